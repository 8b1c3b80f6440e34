package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/copier"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/isolate/inside"
)

// cpCommand is cove cp: docker cp's copy between the host and a running
// container, through the container's root (package copier).
func cpCommand(env *Env) *cobra.Command {
	var archive bool
	c := &cobra.Command{
		Use:   "cp [-a] SRC DEST",
		Short: "copy files between the host and a running container",
		Long: `Copy a file or directory between the host and a running container, as docker cp
does. NAME:PATH is a path of container NAME, resolved inside it (a symlink never
leads out of it, its volumes included); "-" is a tar stream on standard input
or output. A DEST that is a directory gets SRC in it; any other DEST is SRC's
new name, in a directory that must exist. Copied in, files keep their numeric
owners (with -a: the user the container runs as); copied out, they are the
caller's, without setuid, setgid or file capabilities. Root only.`,
		Example: `  cove cp ./nginx.conf web:/etc/nginx/
  cove cp web:/var/log/app ./logs
  cove cp web:/etc/os-release - | tar -t`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			return copyFiles(cmd.Context(), env, args[0], args[1], archive)
		},
	}
	c.Flags().BoolVarP(&archive, "archive", "a", false, "copied in, give the files the container's user (default: their own numeric owners)")
	return c
}

// rootOnly refuses verb to a caller that is not root, saying why.
func rootOnly(verb, why string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s: root only (%s)", verb, why)
	}
	return nil
}

// containerPath splits NAME:PATH; ok is false for a host path ("-", or
// one that starts with "/" or ".", or has no ":").
func containerPath(arg string) (name, p string, ok bool) {
	if arg == "-" || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", "", false
	}
	return strings.Cut(arg, ":")
}

// copyFiles copies src to dst, one of them NAME:PATH.
func copyFiles(ctx context.Context, env *Env, src, dst string, archive bool) error {
	sName, sPath, out := containerPath(src)
	dName, dPath, in := containerPath(dst)
	if out == in {
		return usagef("cp: want one of SRC and DEST as NAME:PATH, the other a host path or -")
	}
	if err := rootOnly("cp", "it reads and writes any file of the container"); err != nil {
		return err
	}
	l := api.NewLocal(declared.Default)
	defer l.Close()
	name := sName + dName
	root, done, err := l.Files(ctx, name)
	if err != nil {
		return named(name, err)
	}
	defer done()
	if out {
		return copyOut(root, sPath, dst, env.Stdout)
	}
	return copyIn(root, src, dPath, archive)
}

// copyOut copies p of the container to the host path dst ("-": stdout).
func copyOut(root copier.Root, p, dst string, stdout io.Writer) error {
	src, err := root.Open(p)
	if err != nil {
		return fmt.Errorf("cp: %s: %w", p, err)
	}
	defer src.Close()
	if dst == "-" {
		return src.Send(stdout)
	}
	st, err := os.Stat(dst)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cp: %w", err)
	}
	dir, as, err := destination(dst, src.Stat, err == nil, err == nil && st.IsDir())
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	defer d.Close()
	owner := func(int, int) (int, int, error) { return os.Geteuid(), os.Getegid(), nil } // the caller's, as docker cp's
	o := layer.ExtractOptions{NoOverwriteDirNonDir: true, SkipDevices: true, NoSetID: true, Owner: owner}
	return pipe(func(w io.Writer) error { return src.SendAs(w, as) }, func(r io.Reader) error {
		_, err := layer.Extract(d, r, o)
		return err
	})
}

// copyIn copies the host path src ("-": a tar stream on stdin) to p of
// the container.
func copyIn(root copier.Root, src, p string, archive bool) error {
	o := copier.PutOptions{NoOverwriteDirNonDir: true, CopyUIDGID: archive}
	if src == "-" {
		body, err := image.Decompress(os.Stdin)
		if err != nil {
			return fmt.Errorf("cp: standard input: %w", err)
		}
		defer body.Close()
		return root.Put(p, body, o)
	}
	abs, err := absHost(src)
	if err != nil {
		return err
	}
	hostRoot, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	defer hostRoot.Close()
	s, err := copier.Root{Dir: hostRoot, Maps: inside.IDMaps{UID: inside.HostRange, GID: inside.HostRange}}.Open(abs)
	if err != nil {
		return fmt.Errorf("cp: %s: %w", src, err)
	}
	defer s.Close()
	st, err := root.Stat(p)
	if err == nil && st.Mode&os.ModeSymlink != 0 { // what it points to, as the docker CLI takes it
		p = st.LinkTarget
		st, err = root.Stat(p)
	}
	if err != nil && !errors.Is(err, copier.ErrNotFound) {
		return fmt.Errorf("cp: %s: %w", p, err)
	}
	dir, as, err := destination(p, s.Stat, err == nil, err == nil && st.Mode.IsDir())
	if err != nil {
		return err
	}
	return pipe(func(w io.Writer) error { return s.SendAs(w, as) }, func(r io.Reader) error { return root.Put(dir, r, o) })
}

// destination is where a copy of src goes for DEST dst (which exists, and
// is a directory, as said): the directory to extract into and the name
// src's first entry has there, as docker cp decides.
func destination(dst string, src copier.PathStat, exists, isDir bool) (dir, as string, err error) {
	switch {
	case isDir:
		return dst, src.Name, nil
	case exists && src.Mode.IsDir():
		return "", "", fmt.Errorf("cp: cannot copy a directory onto the file %s", dst)
	case !exists && !src.Mode.IsDir() && strings.HasSuffix(dst, "/"):
		return "", "", fmt.Errorf("cp: %s: no such directory", dst)
	}
	clean := path.Clean(dst)
	return path.Dir(clean), path.Base(clean), nil
}

// absHost is the host path src made absolute from the working directory,
// keeping a trailing "/" or "/." (copier reads what they mean).
func absHost(src string) (string, error) {
	if filepath.IsAbs(src) {
		return src, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cp: %s: %w", src, err)
	}
	return wd + "/" + src, nil
}

// pipe runs send, writing a stream, and receive, reading it, together,
// and returns once both have ended.
func pipe(send func(io.Writer) error, receive func(io.Reader) error) error {
	r, w := io.Pipe()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		w.CloseWithError(send(w))
	}()
	err := receive(r)
	r.CloseWithError(errors.Join(err, io.ErrClosedPipe)) // a send still writing ends
	<-sent
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}
