package image

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
)

// TestHostileLayersRefused pushes images whose layer tries to write
// outside its directory to the real registry: through "..", through a
// symlink to "/" or "..", and with a hard link to a file outside. Each
// pull is refused naming the entry, nothing is added to the store, and no
// file appears next to it.
func TestHostileLayersRefused(t *testing.T) {
	r, s := registryAndStore(t)
	cases := map[string][]tfile{
		"dotdot":          {{name: "../../escape", body: "x"}},
		"symlink-root":    {{name: "a", typ: tar.TypeSymlink, link: "/"}, {name: "a/tmp/escape", body: "x"}},
		"symlink-parent":  {{name: "b", typ: tar.TypeSymlink, link: "../../.."}, {name: "b/escape", body: "x"}},
		"hardlink-out":    {{name: "h", typ: tar.TypeLink, link: "../../../etc/hostname"}},
		"symlink-chained": {{name: "c", typ: tar.TypeSymlink, link: "d"}, {name: "d", typ: tar.TypeSymlink, link: "/tmp"}, {name: "c/escape", body: "x"}},
	}
	outside := filepath.Dir(s.Root())
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			layer := mkLayer(t, tarOf(t, files...), dockerGzip)
			ref := r.push(t, "hostile/"+name+":1", mkImage(t, false, "amd64", layer))
			before := entries(t, s.LayersDir())
			_, err := pull(t, s, ref, nil)
			wantErr(t, err, digestOf(t, layer).String(), "refused")
			assertNothingVisible(t, s, before)
			if got := entries(t, outside); len(got) != 1 {
				t.Errorf("next to the store: %v, want only the store", got)
			}
			if _, err := os.Stat("/tmp/escape"); err == nil {
				t.Error("/tmp/escape exists: a layer wrote outside the store")
			}
		})
	}
}
