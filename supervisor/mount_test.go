package supervisor

import "testing"

// TestMountUnitName: systemd's name for a mount point's unit
// (systemd-escape --path --suffix=mount).
func TestMountUnitName(t *testing.T) {
	for p, want := range map[string]string{
		"/var/lib/cove/volumes/My-vol.1/_data": `var-lib-cove-volumes-My\x2dvol.1-_data.mount`,
		"/.hidden/a b/":                        `\x2ehidden-a\x20b.mount`,
	} {
		if got := mountUnitName(p); got != want {
			t.Errorf("mountUnitName(%q) = %q, want %q", p, got, want)
		}
	}
}
