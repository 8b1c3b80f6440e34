package layer

import (
	"archive/tar"
	"fmt"
	"slices"
)

// classify is the package's classify for a layer; for Extract every name
// is an ordinary entry, which its options' Check may refuse.
func (u *unpacker) classify(rel string) (kind, string, error) {
	if u.extract == nil {
		return classify(rel)
	}
	return plain, rel, u.check(rel)
}

// check is Extract's options' Check of the clean name rel, if any.
func (u *unpacker) check(rel string) error {
	if u.extract == nil || u.extract.Check == nil {
		return nil
	}
	if err := u.extract.Check(rel); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// metaOf is the package's metaOf, with the owner and privileges
// Extract's options give.
func (u *unpacker) metaOf(hdr *tar.Header) (meta, error) {
	m, err := metaOf(hdr)
	if err != nil || u.extract == nil {
		return m, err
	}
	if u.extract.NoSetID && hdr.Typeflag != tar.TypeDir {
		m.mode &^= 0o6000
		m.xattrs = slices.DeleteFunc(m.xattrs, func(x xattr) bool { return x.key == "security.capability" })
	}
	if u.extract.Owner == nil {
		return m, nil
	}
	if m.uid, m.gid, err = u.extract.Owner(m.uid, m.gid); err != nil {
		return m, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return m, nil
}

// clear is the package's clear, which for Extract refuses what
// NoOverwriteDirNonDir forbids and finds no whiteout (a 0:0 character
// device in a container is one of its files).
func (u *unpacker) clear(l leaf, dir bool) (keep, wasWhiteout bool, err error) {
	if u.extract == nil {
		return clear(l, dir)
	}
	if u.extract.NoOverwriteDirNonDir {
		st, exists, err := lstat(l)
		if err != nil {
			return false, false, err
		}
		if exists && isDir(&st) != dir {
			return false, false, fmt.Errorf("%w: %s", ErrRefused, kindChange(dir))
		}
	}
	keep, _, err = clear(l, dir)
	return keep, false, err
}

// skipped reports whether an Extract leaves the entry hdr, at the clean
// path rel, out: the directory itself ("." would give it the entry's
// owner, mode and times, which Docker's copy leaves), and devices when
// its options say so.
func (u *unpacker) skipped(rel string, hdr *tar.Header) bool {
	if u.extract == nil {
		return false
	}
	return rel == "." || u.extract.SkipDevices && (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock)
}

// badStream is err, a failure to read the tar stream, marked ErrRefused
// for an Extract: its stream is a client's, not a registry's.
func (u *unpacker) badStream(err error) error {
	if u.extract == nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRefused, err)
}

// kindChange says what NoOverwriteDirNonDir refused, as Docker says it.
func kindChange(dir bool) string {
	if dir {
		return "cannot overwrite non-directory with directory"
	}
	return "cannot overwrite directory with non-directory"
}
