package isolate

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNotifyError: a notify socket that is not there gives an error that
// names sendmsg and the socket and wraps the errno.
func TestNotifyError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("NOTIFY_SOCKET", missing)
	err := notifySystemd("READY=1")
	if want := "notify systemd: sendmsg " + missing + ": "; err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("notifySystemd with a missing socket: %v, want %q… wrapping ENOENT", err, want)
	}
}
