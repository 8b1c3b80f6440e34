package vmhost

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qemuImg runs qemu-img with args, failing t on error.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %q: %v\n%s", args, err, out)
	}
}

// TestCheckBase: a base and a chain inside the base's directory pass with
// the base's size; a chain that leaves it, names a pseudo-file, leaves
// its format to probing or has an external data file is refused, and
// qemu-img never opens the file it names.
func TestCheckBase(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("no qemu-img (qemu-utils)")
	}
	dir, outside := t.TempDir(), t.TempDir()
	img := func(name string) string { return filepath.Join(dir, name) }
	qemuImg(t, "create", "-q", "-f", "qcow2", img("root.qcow2"), "64M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img("root.qcow2"), img("mid.qcow2"))
	if size, err := CheckBase(img("mid.qcow2"), "qcow2"); err != nil || size != 64<<20 {
		t.Errorf("chain inside: %d, %v", size, err)
	}
	secret := filepath.Join(outside, "secret.img")
	qemuImg(t, "create", "-q", "-f", "raw", secret, "1M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", secret, img("out.qcow2"))
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img("out.qcow2"), img("deep.qcow2"))
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", `json:{"driver":"raw","file":{"driver":"file","filename":"`+secret+`"}}`, img("json.qcow2"), "1M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+secret+",data_file_raw=on", img("data.qcow2"), "1M")
	if err := os.Symlink(secret, img("link.img")); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-u", "-b", img("link.img"), img("viasymlink.qcow2"), "1M")
	for name, want := range map[string]string{
		"out.qcow2":        "outside the directories",
		"deep.qcow2":       "outside the directories",
		"json.qcow2":       "not a file's absolute path",
		"data.qcow2":       "external data file",
		"viasymlink.qcow2": "outside the directories",
	} {
		if _, err := CheckBase(img(name), "qcow2"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
