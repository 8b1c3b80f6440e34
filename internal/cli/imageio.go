package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/cove-project/cove/internal/image"
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
		registries: func() (*image.Registries, error) { return image.LoadRegistries(image.DefaultRegistriesFile) },
		authFile:   image.DefaultAuthFile,
	}
}

func importCmd(ctx context.Context, env *Env, args []string) error {
	return hostImageIO().importCmd(ctx, env, args)
}

func saveCmd(ctx context.Context, env *Env, args []string) error {
	return hostImageIO().saveCmd(ctx, env, args)
}

func loginCmd(ctx context.Context, env *Env, args []string) error {
	return hostImageIO().loginCmd(ctx, env, args)
}

func logoutCmd(ctx context.Context, env *Env, args []string) error {
	return hostImageIO().logoutCmd(ctx, env, args)
}

// importCmd loads images from an archive, a layout directory or a root
// file system tarball into the store (see image.Store.Import).
func (h imageIO) importCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("import", "[-q] FILE|DIR|- [NAME]", env.Stderr)
	quiet := fs.Bool("q", false, "print only the images' digests")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usagef("import: want FILE (or DIR, or - for standard input) and an optional NAME, got %d arguments", fs.NArg())
	}
	path := fs.Arg(0)
	if path == "-" {
		path = "/dev/stdin"
	}
	opt := image.ImportOptions{Name: fs.Arg(1)}
	if !*quiet {
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
		case *quiet:
			fmt.Fprintln(env.Stdout, rec.Digest)
		case len(rec.Names) == 0:
			fmt.Fprintf(env.Stdout, "imported %s (no name)\n", rec.Digest)
		default:
			fmt.Fprintf(env.Stdout, "imported %s %s\n", rec.Digest, strings.Join(rec.Names, ", "))
		}
	}
	return nil
}

// saveCmd writes images from the store as an archive, to a file
// (replaced atomically) or to standard output (never a terminal).
func (h imageIO) saveCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("save", "[-o FILE] [--format docker-archive|oci-archive] REF...", env.Stderr)
	out := fs.String("o", "", "write the archive to FILE (mode 0600, replaced only when complete) instead of standard output")
	fs.StringVar(out, "output", "", "same as -o")
	format := fs.String("format", image.FormatDockerArchive, "docker-archive (docker load reads it) or oci-archive")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("save: want one or more image references")
	}
	if *format != image.FormatDockerArchive && *format != image.FormatOCIArchive {
		return usagef("save: --format %q is not docker-archive or oci-archive", *format)
	}
	if f, ok := env.Stdout.(*os.File); *out == "" && ok && term.IsTerminal(int(f.Fd())) {
		return usagef("save: not writing an archive to a terminal: give -o FILE or redirect standard output")
	}
	st, err := h.open()
	if err != nil {
		return err
	}
	save := func(w *os.File) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := st.Save(ctx, bw, fs.Args(), *format); err != nil {
			return err
		}
		return bw.Flush()
	}
	if *out == "" {
		f, ok := env.Stdout.(*os.File)
		if !ok {
			return st.Save(ctx, env.Stdout, fs.Args(), *format)
		}
		return save(f)
	}
	return replaceFile(*out, save)
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

// loginCmd checks credentials against a registry and stores them in the
// auth file (see image.Login).
func (h imageIO) loginCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("login", "[-u USER] [--password-stdin] REGISTRY", env.Stderr)
	user := fs.String("u", "", "user name (asked on the terminal when not given)")
	fs.StringVar(user, "username", "", "same as -u")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (else it is asked on the terminal)")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("login: want one registry (HOST[:PORT]), got %d arguments", fs.NArg())
	}
	if *fromStdin && *user == "" {
		return usagef("login: --password-stdin needs -u USER")
	}
	c := image.Credentials{Registry: fs.Arg(0), Username: *user}
	var err error
	if c.Username == "" {
		if c.Username, err = h.ask(env, "Username: ", false); err != nil {
			return err
		}
	}
	if *fromStdin {
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

// logoutCmd removes a registry's credentials from the auth file.
func (h imageIO) logoutCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags("logout", "REGISTRY", env.Stderr)
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("logout: want one registry (HOST[:PORT]), got %d arguments", fs.NArg())
	}
	if err := image.Logout(h.authFile, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Removed the credentials for %s from %s\n", fs.Arg(0), h.authFile)
	return nil
}
