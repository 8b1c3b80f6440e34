package cli

import (
	"bytes"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/supervisor"
)

// TestPrintStatus: cove status shows a running container's network
// ("Network: NAME ADDR4/LEN ADDR6/LEN (MAC)") and its published ports as
// docker ps does, and neither line for a workload without them.
func TestPrintStatus(t *testing.T) {
	w := api.Workload{Workload: supervisor.Workload{Name: "web", Kind: "container", ActiveState: "active", SubState: "running", MainPID: 42}}
	var plain bytes.Buffer
	if err := printStatus(&plain, w); err != nil {
		t.Fatal(err)
	}
	if s := plain.String(); strings.Contains(s, "Network:") || strings.Contains(s, "Ports:") {
		t.Errorf("status without networks:\n%s", s)
	}
	w.Networks = []api.Endpoint{{Network: "cove", Address4: netip.MustParsePrefix("10.77.0.2/16"), Address6: netip.MustParsePrefix("fd00:1::2/64"), MAC: "02:00:00:00:00:01"}}
	w.MemoryBytes = 1966080
	w.Ports = []api.Port{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: "udp"}}
	var out bytes.Buffer
	if err := printStatus(&out, w); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Network:     cove 10.77.0.2/16 fd00:1::2/64 (02:00:00:00:00:01)\n",
		"Ports:       0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:5353->53/udp\n",
		"Memory:      1.9 MiB\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("status:\n%s\nlacks %q", out.String(), line)
		}
	}
}

// TestShellWords: cove status writes a command so that a shell reads
// back the same words.
func TestShellWords(t *testing.T) {
	argv := []string{"/bin/sh", "-c", "echo it's $HOME; exit 1", "", "a=b:c/d.e"}
	got := shellWords(argv)
	if want := `/bin/sh -c 'echo it'\''s $HOME; exit 1' '' a=b:c/d.e`; got != want {
		t.Fatalf("shellWords = %s, want %s", got, want)
	}
	out, err := exec.Command("/bin/sh", "-c", `for w in `+got+`; do printf '[%s]' "$w"; done`).Output()
	if err != nil || string(out) != "[/bin/sh][-c][echo it's $HOME; exit 1][][a=b:c/d.e]" {
		t.Errorf("a shell reads back %q (%v)", out, err)
	}
}
