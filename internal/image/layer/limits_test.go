package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestLimits checks that a layer over MaxBytes (one big file, or files
// adding up) or MaxEntries fails with ErrLimit before the entry over the
// limit is written, and that a layer exactly at the limits passes.
func TestLimits(t *testing.T) {
	ents := []ent{regEnt("a", "12345"), regEnt("b", "67890"), dirEnt("d")}
	for _, c := range []struct {
		name  string
		lim   Limits
		entry string // the entry refused, "" for none
	}{
		{"at the limits", Limits{MaxBytes: 10, MaxEntries: 3}, ""},
		{"one file too big", Limits{MaxBytes: 4}, "a"},
		{"files add up", Limits{MaxBytes: 9}, "b"},
		{"too many entries", Limits{MaxEntries: 2}, "d"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _, st, err := unpackTar(t, layerTar(t, ents...), c.lim)
			if c.entry == "" {
				if err != nil || st != (Stats{Bytes: 10, Entries: 3}) {
					t.Errorf("Unpack = %+v, %v; want 10 bytes, 3 entries", st, err)
				}
				return
			}
			if !errors.Is(err, ErrLimit) || !strings.HasPrefix(err.Error(), `layer entry "`+c.entry+`": `) {
				t.Fatalf("Unpack = %v, want ErrLimit at entry %q", err, c.entry)
			}
			for _, n := range listDir(t, dir) {
				if n == c.entry {
					t.Errorf("entry %q over the limit was made", n)
				}
			}
		})
	}
}

// TestLimitDeclaredSize checks that a file's declared size counts before
// any of its data is read: a header claiming 1 TiB fails at once, though
// the stream holds no data for it.
func TestLimitDeclaredSize(t *testing.T) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb", Size: 1 << 40, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := unpackTar(t, b.Bytes(), Limits{MaxBytes: 1 << 30})
	if !errors.Is(err, ErrLimit) || !strings.HasPrefix(err.Error(), `layer entry "bomb": `) {
		t.Errorf("Unpack = %v, want ErrLimit at entry \"bomb\"", err)
	}
}

// TestTruncated checks that a stream cut inside an entry's data, inside a
// header, or between two entries (no end-of-archive block) is an error,
// while a stream with only one end-of-archive block is accepted.
func TestTruncated(t *testing.T) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	var ends []int // where each entry's data, padded, ends
	for _, e := range []ent{regEnt("a", strings.Repeat("x", 1000)), regEnt("b", "y")} {
		if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.Name, Mode: 0o644, Size: int64(len(e.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, b.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	for _, c := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"inside data", ends[0] - 100, false},
		{"inside header", ends[0] + 100, false},
		{"between entries", ends[0], false},
		{"after the last entry", ends[1], false},
		{"one end block", ends[1] + blockSize, true},
		{"whole", len(full), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := unpackTar(t, full[:c.n], Limits{})
			if c.ok != (err == nil) || !c.ok && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Unpack of %d of %d bytes = %v, want ok %v or io.ErrUnexpectedEOF", c.n, len(full), err, c.ok)
			}
		})
	}
}
