package stored

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
)

// RandomID is 16 hex digits for names of work in progress.
func RandomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteFileAtomic replaces dst with data: a temporary file in tmpDir (on
// dst's file system) is written, fsynced, renamed over dst, and dst's
// directory fsynced. On error dst is as it was and the temporary is gone.
func WriteFileAtomic(tmpDir, dst string, data []byte) error {
	if err := replaceFile(tmpDir, dst, data, true); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(dst))
}

// ReplaceFile replaces dst with data as WriteFileAtomic does, but syncs
// nothing: a reader sees the old or the new content, and a crash may lose
// the change. For what a crash removes anyway: each fsync waits for the
// file system's journal, which on a host that writes a lot takes tens of
// milliseconds.
func ReplaceFile(tmpDir, dst string, data []byte) error {
	return replaceFile(tmpDir, dst, data, false)
}

// replaceFile writes data to a temporary file in tmpDir, fsynced if sync,
// and renames it over dst. On error dst is as it was and the temporary is
// gone.
func replaceFile(tmpDir, dst string, data []byte, sync bool) error {
	f, err := os.CreateTemp(tmpDir, "write-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// SyncDir fsyncs the directory dir, making renames and removals in it
// durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// StillAt reports whether the open file f is still the file at path (a
// lock file its last holder may have removed).
func StillAt(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}
