package copier

import (
	"archive/tar"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Export writes the container's root file system to w, as Docker's GET
// /containers/ID/export does: a tar stream of what the root holds, named
// relative to it ("bin/", "bin/sh"; no entry for the root itself),
// written as Send writes a directory's, but of the root's own mount
// alone: a mount point in it (a volume, /proc, a bind-mounted
// resolv.conf) is a directory's entry without what the mount holds, or
// nothing for a file.
func (r Root) Export(w io.Writer) error {
	fd, err := r.openIn("/", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), "/")
	defer d.Close()
	a := archiver{tw: tar.NewWriter(w), root: r, links: map[[2]uint64]string{}}
	if a.mount, err = mountID(leaf{fd, ""}); err != nil {
		return err
	}
	if err := a.children(d, ""); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return fmt.Errorf("write the tar stream: %w", err)
	}
	return nil
}
