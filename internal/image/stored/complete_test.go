package stored

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrepareState: a container's state directory holds the record of
// its image's digest, mode 0700, and no temporary file, whether the record
// is durable or a throwaway run's (the same content, without the fsyncs).
func TestPrepareState(t *testing.T) {
	for _, throwaway := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "containers", "web")
		for _, digest := range []string{"sha256:aaa", "sha256:bbb"} { // created, then replaced
			if err := PrepareState(dir, digest, throwaway); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, digestFile)); err != nil || string(b) != digest+"\n" {
				t.Errorf("throwaway %v: the record holds %q (%v), want %q", throwaway, b, err, digest+"\n")
			}
		}
		es, _ := os.ReadDir(dir)
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 || len(es) != 1 {
			t.Errorf("throwaway %v: the state directory has mode %v (%v) and %d entries, want 0700 and the record alone", throwaway, st.Mode(), err, len(es))
		}
	}
}
