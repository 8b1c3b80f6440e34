package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/tests/registry"
)

// imageTest is a registry with one pushed image, and a store (with
// settings that reach the registry) that pulled it.
type imageTest struct {
	reg   *registry.Registry
	ref   string
	store *image.Store
	set   *image.Registries
}

// newImageTest starts the registry, pushes app/web:1 (one file) and
// pulls it into a new store. It needs root (layers are unpacked).
func newImageTest(t *testing.T) *imageTest {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers needs root")
	}
	reg, err := registry.Start(t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(reg.Close)
	it := &imageTest{reg: reg, set: &image.Registries{Registry: []image.Registry{{Location: reg.Addr, Insecure: true}}}}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := registry.DirLayer(src)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.Image(v1.Config{Cmd: []string{"/hello"}}, l)
	if err == nil {
		it.ref, err = reg.Push("app/web:1", img)
	}
	if err != nil {
		t.Fatal(err)
	}
	it.store = newTestStore(t, it.set)
	if _, err := it.store.Pull(context.Background(), it.ref, image.PullOptions{Keychain: image.FileKeychain("/nonexistent")}); err != nil {
		t.Fatal(err)
	}
	return it
}

// newTestStore opens a store in a new directory.
func newTestStore(t *testing.T, set *image.Registries) *image.Store {
	t.Helper()
	st, err := image.Open(filepath.Join(t.TempDir(), "images"), set)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// io is an imageIO on st, with stdin and an auth file in a temporary
// directory.
func (it *imageTest) io(t *testing.T, st *image.Store, stdin string) imageIO {
	return imageIO{
		stdin:      strings.NewReader(stdin),
		open:       func() (*image.Store, error) { return st, nil },
		registries: func() (*image.Registries, error) { return it.set, nil },
		authFile:   filepath.Join(t.TempDir(), "auth.json"),
	}
}

// testEnv is an Env writing to buffers.
func testEnv() (*Env, *bytes.Buffer) {
	var out bytes.Buffer
	return &Env{Stdout: &out, Stderr: &bytes.Buffer{}}, &out
}

// TestSaveImportCommands: cove save -o FILE writes an archive (mode
// 0600, nothing else left beside it), cove import loads it into another
// store under the local name, with the image's file; cove save to
// standard output; bad arguments are usage errors.
func TestSaveImportCommands(t *testing.T) {
	it := newImageTest(t)
	env, out := testEnv()
	dir := t.TempDir()
	file := filepath.Join(dir, "web.tar")
	if err := runAlone(env, it.io(t, it.store, "").saveCommand(env, "save"), "-o", file, "--format", "oci-archive", it.ref); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v, %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("beside the saved file: %v", ents)
	}
	other := newTestStore(t, nil)
	if err := runAlone(env, it.io(t, other, "").importCommand(env, "import"), file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "imported sha256:") || !strings.Contains(out.String(), "localhost/app/web:1") {
		t.Errorf("import printed %q", out.String())
	}
	in, err := other.Inspect("localhost/app/web:1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(in.LayerDirs[0], "hello")); err != nil || string(b) != "hello\n" {
		t.Errorf("imported file: %q, %v", b, err)
	}
	out.Reset()
	if err := runAlone(env, it.io(t, it.store, "").saveCommand(env, "save"), it.ref); err != nil || out.Len() < 1024 {
		t.Errorf("save to standard output: %d bytes, %v", out.Len(), err)
	}
	for _, args := range [][]string{{"save"}, {"save", "--format", "zip", it.ref}, {"import"}, {"import", "a", "b", "c"}} {
		h := it.io(t, it.store, "")
		cmd := map[string]*cobra.Command{"save": h.saveCommand(env, "save"), "import": h.importCommand(env, "import")}[args[0]]
		var ue usageError
		if err := runAlone(env, cmd, args[1:]...); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestLoginLogoutCommands logs in to the registry (no auth there: any
// credentials do) with the password on standard input, then logs out;
// missing credentials without a terminal are usage errors.
func TestLoginLogoutCommands(t *testing.T) {
	it := newImageTest(t)
	env, out := testEnv()
	h := it.io(t, it.store, "pw\n")
	if err := runAlone(env, h.loginCommand(env), "-u", "me", "--password-stdin", it.reg.Addr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(h.authFile)
	if err != nil || !strings.Contains(string(data), it.reg.Addr) || !strings.Contains(string(data), "bWU6cHc=") { // base64("me:pw")
		t.Errorf("auth file after login: %s, %v", data, err)
	}
	if err := runAlone(env, h.logoutCommand(env), it.reg.Addr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Login Succeeded") || !strings.Contains(out.String(), "Removed the credentials for "+it.reg.Addr) {
		t.Errorf("printed %q", out.String())
	}
	for _, args := range [][]string{{"--password-stdin", it.reg.Addr}, {it.reg.Addr}, {}} {
		var ue usageError
		if err := runAlone(env, h.loginCommand(env), args...); !errors.As(err, &ue) {
			t.Errorf("login %v: %v, want a usage error", args, err)
		}
	}
}
