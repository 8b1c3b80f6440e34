package declared

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWriteFileAtomic: the file is replaced whole, no temporary is left.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "a.toml")
	for _, content := range []string{"one\n", "two, longer\n"} {
		if err := WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Errorf("content %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := Remove(p); err != nil || Remove(p) != nil {
		t.Errorf("Remove: %v", err)
	}
}

// TestLockExcludes: a second Lock waits for the first to be released.
func TestLockExcludes(t *testing.T) {
	p := Paths{Run: t.TempDir()}
	unlock, err := p.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	released := false
	done := make(chan bool)
	go func() {
		u2, err := p.Lock(context.Background())
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		done <- released
		mu.Unlock()
		u2()
	}()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	released = true
	mu.Unlock()
	unlock()
	if !<-done {
		t.Error("the second lock was taken while the first was held")
	}
}

// TestLockName: a name's lock excludes a second holder of that name (it
// waits until its context ends), not one of another name; a name that
// is no workload name is refused; a released lock leaves no file.
func TestLockName(t *testing.T) {
	p := Paths{Run: t.TempDir()}
	unlock, err := p.LockName(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.LockName(ctx, "web"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockName of a held name: %v, want the context's end", err)
	}
	other, err := p.LockName(ctx, "db")
	if err != nil {
		t.Fatalf("LockName of another name: %v", err)
	}
	other()
	unlock()
	again, err := p.LockName(context.Background(), "web")
	if err != nil {
		t.Fatalf("LockName of a released name: %v", err)
	}
	again()
	if _, err := p.LockName(context.Background(), "../web"); err == nil {
		t.Error("LockName of ../web: no error")
	}
	if ents, _ := os.ReadDir(filepath.Join(p.Run, "names")); len(ents) != 0 {
		t.Errorf("lock files left after every release: %v", ents)
	}
}

// TestLockNameAfterRemoval: a holder that waited on a name's lock file
// while the last holder removed it takes the lock on the file that is
// there now, so that a third still waits for it.
func TestLockNameAfterRemoval(t *testing.T) {
	p := Paths{Run: t.TempDir()}
	first, err := p.LockName(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan func())
	go func() {
		unlock, err := p.LockName(context.Background(), "web") // waits in flock on the first's file
		if err != nil {
			t.Error(err)
		}
		second <- unlock
	}()
	time.Sleep(100 * time.Millisecond)
	first() // removes the file the second waits on
	unlock := <-second
	if unlock == nil {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.LockName(ctx, "web"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third LockName while the second holds the name: %v, want the context's end", err)
	}
	unlock()
}

// TestLockNameReleaseTwice: a release called again does nothing; above
// all it does not remove the file a later holder locked, which would let
// a third take the name beside it.
func TestLockNameReleaseTwice(t *testing.T) {
	p := Paths{Run: t.TempDir()}
	first, err := p.LockName(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	first()
	second, err := p.LockName(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	defer second()
	first()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.LockName(ctx, "web"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockName while the second holds the name, after the first's release ran again: %v, want the context's end", err)
	}
}

// TestSpecFiles: Etc wins over Vendor by name, sorted.
func TestSpecFiles(t *testing.T) {
	root := t.TempDir()
	p := Paths{Vendor: filepath.Join(root, "v"), Etc: filepath.Join(root, "e")}
	for _, f := range []string{p.Vendor + "/b.toml", p.Vendor + "/a.toml", p.Etc + "/b.toml", p.Etc + "/x.txt"} {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, nil, 0o644)
	}
	files, err := p.SpecFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != p.Vendor+"/a.toml" || files[1].Path != p.Etc+"/b.toml" {
		t.Errorf("SpecFiles = %+v", files)
	}
}

// TestLockFor: while another holds the apply lock, LockFor gives up when
// its caller's context ends, with that cause (not ErrApplyBusy, which is
// for its own LockWait); once the lock is free it takes it.
func TestLockFor(t *testing.T) {
	p := Paths{Run: t.TempDir()}
	unlock, err := p.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.LockFor(ctx); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrApplyBusy) || time.Since(start) > 5*time.Second {
		t.Errorf("LockFor with the lock held: %v after %s, want the context's end", err, time.Since(start))
	}
	unlock()
	again, err := p.LockFor(context.Background())
	if err != nil {
		t.Fatalf("LockFor with the lock free: %v", err)
	}
	again()
}

// TestScaleRefusedKeepsSpec: a scale the declared specs refuse (another
// spec shares the network namespace of an instance it would remove)
// fails before touching systemd and leaves the spec file as it was.
func TestScaleRefusedKeepsSpec(t *testing.T) {
	root := t.TempDir()
	p := Paths{Etc: filepath.Join(root, "etc"), Applied: filepath.Join(root, "applied"), Run: filepath.Join(root, "run")}
	rootfs := t.TempDir() // hostcheck wants a directory
	web := "version = 1\nkind = \"container\"\n[container]\nrootfs = \"" + rootfs + "\"\nread_only = true\nnetwork = \"none\"\ncommand = [\"/bin/true\"]\n[service]\nreplicas = 2\n"
	side := "version = 1\nkind = \"container\"\n[container]\nrootfs = \"" + rootfs + "\"\nnetwork = \"container:web@2\"\ncommand = [\"/bin/true\"]\n"
	for name, text := range map[string]string{"web": web, "side": side} {
		if err := os.MkdirAll(p.Etc, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.EtcPath(name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := SetReplicas(context.Background(), Options{Paths: p}, nil, "web", 1, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "web@2 names an instance web does not have (service.replicas = 1)") {
		t.Errorf("scale web=1 with side on web@2: %v", err)
	}
	if got, _ := os.ReadFile(p.EtcPath("web")); string(got) != web {
		t.Errorf("web.toml after the refused scale:\n%s", got)
	}
}
