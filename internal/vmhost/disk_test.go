package vmhost

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cove-project/cove/spec"
)

func TestDetectDiskFormat(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"qcow2": "QFI\xfb\x00\x00\x00\x03rest",
		"raw":   "\x00\x00\x00\x00\x00\x00",
		"short": "QF",
		"empty": "",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		want := spec.FormatRaw
		if name == "qcow2" {
			want = spec.FormatQcow2
		}
		if got, err := DetectDiskFormat(p); err != nil || got != want {
			t.Errorf("%s: DetectDiskFormat = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := DetectDiskFormat(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
