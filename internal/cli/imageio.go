package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
)

// maxPasswordBytes bounds a password read from standard input.
const maxPasswordBytes = 64 << 10

// imageIO is what cove import, save, login and logout touch: standard
// input, the image store, the registry settings and the auth file; tests
// give their own.
type imageIO struct {
	stdin      io.Reader
	open       func() (*image.Store, error)
	registries func() (*image.Registries, error)
	authFile   string
}

// hostImageIO is the host's: os.Stdin, the default store, registries.toml
// and /etc/cove/auth.json.
func hostImageIO() imageIO {
	return imageIO{
		stdin:      os.Stdin,
		open:       image.OpenDefault,
		registries: func() (*image.Registries, error) { return stored.LoadRegistries(image.DefaultRegistriesFile) },
		authFile:   image.DefaultAuthFile,
	}
}

// importCommand is cove import (or, path "image import", cove image
// import): it loads images from an archive, a layout directory or a root
// file system tarball into the store (see image.Store.Import).
func (h imageIO) importCommand(env *Env, path string) *cobra.Command {
	var quiet bool
	var opt image.ImportOptions
	c := &cobra.Command{
		Use:   "import [flags] FILE|DIR|- [NAME]",
		Short: "load images from a docker-archive, oci-archive, OCI layout or rootfs tarball",
		Long: `Load images from a docker-archive, an oci-archive, an OCI layout directory or a
root file system tarball (then named NAME, its configuration set by --change
Dockerfile instructions) into the store; - reads standard input.`,
		Example: examples(path, "web.tar", "-q ./oci-layout", "rootfs.tar.gz localhost/mybase:1",
			`-c 'CMD ["/bin/sh"]' -m "from the build" rootfs.tar mybase:2`),
		Args: wantArgs(1, 2, "FILE (or DIR, or - for standard input) and an optional NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return h.importImages(cmd.Context(), env, args, opt, quiet)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the images' digests")
	c.Flags().StringArrayVarP(&opt.Changes, "change", "c", nil, "a root file system tarball: apply a Dockerfile instruction to its configuration (repeatable)")
	c.Flags().StringVarP(&opt.Message, "message", "m", "", "a root file system tarball: its history comment")
	return renamed(path, c)
}

// importImages imports args, FILE|DIR|- [NAME] (see importCommand), with
// opt.
func (h imageIO) importImages(ctx context.Context, env *Env, args []string, opt image.ImportOptions, quiet bool) error {
	path := args[0]
	if path == "-" {
		path = "/dev/stdin"
	}
	if len(args) > 1 {
		opt.Name = args[1]
	}
	if !quiet {
		opt.Progress = image.NewProgressPrinter(env.Stdout)
	}
	st, err := h.open()
	if err != nil {
		return err
	}
	recs, err := st.Import(ctx, path, opt)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		switch {
		case quiet:
			fmt.Fprintln(env.Stdout, rec.Digest)
		case len(rec.Names) == 0:
			fmt.Fprintf(env.Stdout, "imported %s (no name)\n", rec.Digest)
		default:
			fmt.Fprintf(env.Stdout, "imported %s %s\n", rec.Digest, strings.Join(rec.Names, ", "))
		}
	}
	return nil
}

// saveCommand is cove save (or, path "image save", cove image save): it
// writes images from the store as an archive, to a file (replaced
// atomically) or to standard output (never a terminal).
func (h imageIO) saveCommand(env *Env, path string) *cobra.Command {
	var out, format string
	c := &cobra.Command{
		Use:               "save [flags] REF...",
		Short:             "write images as a docker-archive or oci-archive",
		Example:           examples(path, "-o web.tar registry.example:5000/app/web:1.4", "--format oci-archive busybox:latest > busybox.tar"),
		Args:              wantArgs(1, -1, "one or more image references"),
		ValidArgsFunction: completeImages(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return h.save(cmd.Context(), env, args, out, format)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the archive to `FILE` (mode 0600, replaced only when complete) instead of standard output")
	c.Flags().StringVar(&format, "format", image.FormatDockerArchive, "docker-archive (docker load reads it) or oci-archive")
	return renamed(path, c)
}

// save writes the images refs to out or standard output (see saveCommand).
func (h imageIO) save(ctx context.Context, env *Env, refs []string, out, format string) error {
	if format != image.FormatDockerArchive && format != image.FormatOCIArchive {
		return usagef("save: --format %q is not docker-archive or oci-archive", format)
	}
	if f, ok := env.Stdout.(*os.File); out == "" && ok && term.IsTerminal(int(f.Fd())) {
		return usagef("save: not writing an archive to a terminal: give -o FILE or redirect standard output")
	}
	st, err := h.open()
	if err != nil {
		return err
	}
	save := func(w *os.File) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := st.Save(ctx, bw, refs, format); err != nil {
			return err
		}
		return bw.Flush()
	}
	if out == "" {
		f, ok := env.Stdout.(*os.File)
		if !ok {
			return st.Save(ctx, env.Stdout, refs, format)
		}
		return save(f)
	}
	return replaceFile(out, save)
}

// replaceFile writes path with write: into a temporary file beside it
// (mode 0600), fsynced and renamed over path only when write succeeded.
func replaceFile(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// loginCommand is cove login: it checks credentials against a registry
// and stores them in the auth file (see image.Login).
func (h imageIO) loginCommand(env *Env) *cobra.Command {
	var user string
	var fromStdin bool
	c := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "check and store credentials for a registry",
		Long: `Check credentials against a registry and store them in /etc/cove/auth.json
(mode 0600). The user name and password are asked on the terminal unless given.`,
		Example: `  cove login registry.example:5000
  echo "$TOKEN" | cove login -u ci --password-stdin registry.example:5000`,
		Args: wantArgs(1, 1, "one registry (HOST[:PORT])"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return h.login(cmd.Context(), env, args[0], user, fromStdin)
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "user name (asked on the terminal when not given)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (else it is asked on the terminal)")
	return c
}

// login logs in to registry (see loginCommand).
func (h imageIO) login(ctx context.Context, env *Env, registry, user string, fromStdin bool) error {
	if fromStdin && user == "" {
		return usagef("login: --password-stdin needs -u USER")
	}
	c := image.Credentials{Registry: registry, Username: user}
	var err error
	if c.Username == "" {
		if c.Username, err = h.ask(env, "Username: ", false); err != nil {
			return err
		}
	}
	if fromStdin {
		c.Password, err = readPassword(h.stdin)
	} else {
		c.Password, err = h.ask(env, "Password: ", true)
	}
	if err != nil {
		return err
	}
	reg, err := h.registries()
	if err != nil {
		return err
	}
	if err := image.Login(ctx, reg, h.authFile, c); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Login Succeeded (credentials for %s stored in %s)\n", c.Registry, h.authFile)
	return nil
}

// readPassword reads a password from r: all of it, without the final
// line break.
func readPassword(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPasswordBytes+1))
	if err != nil {
		return "", fmt.Errorf("login: read the password: %w", err)
	}
	if len(data) > maxPasswordBytes {
		return "", fmt.Errorf("login: the password on standard input is longer than %d bytes", maxPasswordBytes)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// ask prompts on standard error and reads a line from standard input,
// which must be a terminal; secret turns echo off.
func (h imageIO) ask(env *Env, prompt string, secret bool) (string, error) {
	f, ok := h.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("login: standard input is not a terminal: give -u USER and --password-stdin")
	}
	fmt.Fprint(env.Stderr, prompt)
	if secret {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// logoutCommand is cove logout: it removes a registry's credentials from
// the auth file.
func (h imageIO) logoutCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "logout REGISTRY",
		Short:   "remove a registry's stored credentials",
		Example: "  cove logout registry.example:5000",
		Args:    wantArgs(1, 1, "one registry (HOST[:PORT])"),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := image.Logout(h.authFile, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Removed the credentials for %s from %s\n", args[0], h.authFile)
			return nil
		},
	}
}
