package layer

import (
	"fmt"
	"path"
	"strings"
)

// Whiteout names of the OCI layer format (inherited from AUFS).
const (
	whPrefix = ".wh."         // ".wh.NAME" deletes NAME of the lower layers
	whMeta   = ".wh..wh."     // AUFS bookkeeping (".wh..wh.plnk", ...), and:
	whOpaque = ".wh..wh..opq" // hides every lower child of its directory
)

// kind is what an entry's name makes of it, whatever its tar type.
type kind int

const (
	plain    kind = iota // an ordinary entry
	whiteout             // ".wh.NAME": hide NAME of the lower layers
	opaque               // ".wh..wh..opq": hide the lower children of its directory
	aufsMeta             // other ".wh..wh." names, and what is under them: skipped
)

// cleanName turns a tar member name into a clean slash-separated path
// relative to the layer root ("." for the root itself): leading "/" and
// "./" go, and inner ".." components are resolved lexically. It refuses a
// name whose ".." components climb out of the root, such as "../x",
// "a/../../x" or "/../x".
func cleanName(name string) (string, error) {
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %q leaves the layer directory", ErrRefused, name)
	}
	return rel, nil
}

// classify says what the clean name rel stands for, and the path it acts
// on: the hidden path for a whiteout, the directory for an opaque marker,
// rel itself otherwise. A whiteout name used as a directory is refused,
// except under an AUFS bookkeeping directory (skipped whole).
func classify(rel string) (kind, string, error) {
	dir, base := path.Split(rel)
	for _, c := range strings.Split(dir, "/") {
		if strings.HasPrefix(c, whMeta) {
			return aufsMeta, rel, nil
		}
		if strings.HasPrefix(c, whPrefix) {
			return 0, "", fmt.Errorf("%w: whiteout name %q used as a directory", ErrRefused, c)
		}
	}
	switch {
	case base == whOpaque:
		return opaque, path.Clean(dir), nil
	case strings.HasPrefix(base, whMeta):
		return aufsMeta, rel, nil
	case strings.HasPrefix(base, whPrefix):
		hidden := strings.TrimPrefix(base, whPrefix)
		if hidden == "" || hidden == "." || hidden == ".." {
			return 0, "", fmt.Errorf("%w: whiteout %q names no entry", ErrRefused, base)
		}
		return whiteout, path.Join(dir, hidden), nil
	}
	return plain, rel, nil
}

// split cuts the clean name rel into its parent directory and its last
// component; the root "." is its own parent, with last component ".".
func split(rel string) (parent, name string) {
	if rel == "." {
		return ".", "."
	}
	dir, name := path.Split(rel)
	return path.Clean(dir), name
}
