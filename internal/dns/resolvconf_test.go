package dns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

func TestContainerResolvConf(t *testing.T) {
	n := plan.Default()
	got, err := ContainerResolvConf(n, "/nonexistent")
	if err != nil || !strings.Contains(string(got), "nameserver 10.77.0.1\nnameserver "+n.Gateway6.String()+"\nsearch cove\n") {
		t.Errorf("with DNS: %v\n%s", err, got)
	}
	host := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(host, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 2001:db8::53\n"), 0o644)
	n.NoDNS = true
	got, err = ContainerResolvConf(n, host)
	want := "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"
	if err != nil || !strings.HasSuffix(string(got), want) || strings.Contains(string(got), "127.0.0.53") {
		t.Errorf("without DNS: %v\n%s\nwant the host's non-loopback resolvers %q", err, got, want)
	}
}
