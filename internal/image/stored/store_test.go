package stored

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenCreatesNothing: a store opened for reading whose root does not
// exist holds no image and is not created; Create makes its directories.
func TestOpenCreatesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	st, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"registry.test/app:1", "0123456789ab"} {
		if _, err := st.Lookup(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q) in a store not created: %v, want ErrNotFound", ref, err)
		}
	}
	if recs, err := st.List(); err != nil || len(recs) != 0 {
		t.Errorf("List of a store not created: %v, %v; want none", recs, err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reads made the store's root (stat: %v)", err)
	}
	if err := st.Create(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{st.BlobsDir(), st.LayersDir(), st.ImagesDir(), st.TmpDir()} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("after Create: %v", err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("after Create, %s has mode %v, want a directory of mode 0700", d, fi.Mode())
		}
	}
}
