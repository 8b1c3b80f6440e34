package stored

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLoadRegistries parses registries.toml and refuses mistakes.
func TestLoadRegistries(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, fmt.Sprint(len(text))+".toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("search = [\"reg.example\"]\n[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\nca_file = \"/x/ca.pem\"\nmirrors = [\"mirror.example/cache\"]\n")
	reg, err := LoadRegistries(good)
	if err != nil || !slices.Equal(reg.Search, []string{"reg.example"}) || !reg.Settings("127.0.0.1:5000").Insecure {
		t.Errorf("load: %+v, %v", reg, err)
	}
	for _, bad := range []string{"serch = []\n", "[[registry]]\nlocation = \"http://x\"\n", "[[registry]]\nlocation = \"x\"\nca_file = \"rel.pem\"\n", "[[registry]]\nlocation = \"a\"\n[[registry]]\nlocation = \"a\"\n"} {
		if _, err := LoadRegistries(write(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if reg, err := LoadRegistries(filepath.Join(dir, "missing.toml")); err != nil || len(reg.Registry) != 0 {
		t.Errorf("missing file: %+v, %v", reg, err)
	}
}
