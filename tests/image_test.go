package tests

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/tests/registry"
)

// imageConfig is the test image's configuration: the payload shows its
// identity, directory, environment and a file of the upper layer.
var imageConfig = v1.Config{
	Cmd:        []string{"/bin/sh", "-c", "echo image-cmd; id; pwd; echo greeting=$GREETING; cat /etc/motd"},
	Env:        []string{"PATH=/bin:/sbin", "GREETING=from-image"},
	WorkingDir: "/www",
	User:       "1000:1000",
}

// testImage starts a registry on 127.0.0.1 (stopped when t ends), pushes
// an image of two layers to it (the busybox rootfs; then /etc/motd, /www
// and a whiteout of /etc/hostname) and allows plain HTTP to it in the
// sandbox's /etc/cove/registries.toml. It returns the image's reference
// and the registry.
func testImage(t *testing.T) (string, *registry.Registry) {
	t.Helper()
	dir := filepath.Join(workDir, "registry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	top := filepath.Join(workDir, "layer2")
	for path, text := range map[string]string{"etc/motd": "motd from layer 2\n", "www/index.html": "hi\n", "etc/.wh.hostname": ""} {
		if err := os.MkdirAll(filepath.Join(top, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, path), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(top, "www"), 0o777); err != nil { // the image's user writes there
		t.Fatal(err)
	}
	ref := pushImage(t, reg, "cove/test:1", imageConfig, rootfs, top)
	conf := "[[registry]]\nlocation = \"" + reg.Addr + "\"\ninsecure = true\n"
	if r := insideStdin(t, conf, "sh", "-c", "mkdir -p /etc/cove && cat > /etc/cove/registries.toml"); r.Code != 0 {
		t.Fatalf("write registries.toml: %s", r.Stderr)
	}
	t.Cleanup(func() { inside(t, "rm", "-f", "/etc/cove/registries.toml") })
	return ref, reg
}

// pushImage pushes an image of the directories (bottom first) with
// configuration cfg as name.
func pushImage(t *testing.T, reg *registry.Registry, name string, cfg v1.Config, dirs ...string) string {
	t.Helper()
	var layers []v1.Layer
	for _, d := range dirs {
		l, err := registry.DirLayer(d)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := registry.Image(cfg, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reg.Push(name, img)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestImages: an image pulled from a real registry (cove pull's plain
// progress lines and -q) runs as a transient and as a declared workload,
// with the image's configuration applied; the upper layer survives a
// restart and goes with cove rm, and the image's layers are never
// written; rmi is refused while the image is used (--force stops the
// user); prune removes its layers.
func TestImages(t *testing.T) {
	env.Need(t)
	ref, _ := testImage(t)
	out := mustCove(t, "pull", ref)
	if !strings.Contains(out, "pulled "+ref) || !strings.Contains(out, "sha256:") {
		t.Fatalf("cove pull printed:\n%s", out)
	}
	// Not a terminal: plain lines, one per layer and state, no redrawing.
	if done := regexp.MustCompile(`(?m)^[0-9a-f]{12}: done `).FindAllString(out, -1); len(done) != 2 || strings.Contains(out, "\x1b") {
		t.Errorf("cove pull's progress (not a terminal) has %d layer done lines, want 2 and no escapes:\n%q", len(done), out)
	}
	if q := mustCove(t, "pull", "-q", ref); !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(q) {
		t.Errorf("cove pull -q printed %q, want the digest alone", q)
	}
	if n := layerDirs(t); n != 2 {
		t.Fatalf("the store holds %d layer directories, want 2", n)
	}
	t.Run("images", func(t *testing.T) { imagesListed(t, ref) })
	t.Run("run", func(t *testing.T) { runImage(t, ref) })
	t.Run("declared", func(t *testing.T) { declaredImage(t, ref) })
	t.Run("left-over state", func(t *testing.T) { leftOverState(t, ref) })
	t.Run("rerun while stopping", func(t *testing.T) {
		rerunWhileStopping(t, "imgstop", []string{"run", "--rm", "--name", "imgstop", "--network", "none", "--stop-timeout", "6s", ref})
	})
	t.Run("name lock", func(t *testing.T) {
		nameLock(t, "imglock", "run", "--rm", "--name", "imglock", "--network", "none", ref, "/bin/echo", "ran")
		removeUnderLock(t, ref)
	})
	t.Run("apply over a run", func(t *testing.T) { applyOverRun(t, ref) })
	t.Run("apply adopts a started unit", func(t *testing.T) { applyAdopts(t, ref) })
	t.Run("volatile", func(t *testing.T) { volatileImage(t, ref) })
	t.Run("failed pull changes nothing", func(t *testing.T) { failedPull(t, ref) })
	t.Run("rmi and prune", func(t *testing.T) { removeImage(t, ref) })
}

// nameLock checks that "cove ARGS…" (a run of workload name that
// prints "ran") waits, before it touches anything of its name, while the
// name's lock (/run/cove/names/NAME.lock) is held: that is what keeps a
// run that started at the same time, or a cove rm of that name, from
// removing what this one is starting with. Its unit does not appear, nor
// does it print or end, until the holder lets go; then it runs.
func nameLock(t *testing.T, name string, args ...string) {
	release := holdNameLock(t, name)
	run := startInside(t, coveBin, args...)
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if st := show(t, spec.UnitName(name), "LoadState"); st != "not-found" {
			t.Fatalf("%s is %s while its name's lock is held", spec.UnitName(name), st)
		}
	}
	select { // a run that did not wait has printed, or ended, by now
	case l := <-run.lines:
		t.Fatalf("cove run printed %q while its name's lock is held", l)
	case code := <-run.done:
		t.Fatalf("cove run ended (exit %d) while its name's lock is held", code)
	default:
	}
	release()
	run.waitLine(t, "ran")
	if code := run.exit(t); code != 0 {
		t.Errorf("cove run after the lock was released: exit %d", code)
	}
}

// removeUnderLock checks that cove rm stops and unloads a workload at
// once, but drops its writable layer only holding the name's lock (which
// a run of that name starting meanwhile holds until its unit is loaded):
// while another holds it, the layer stays and cove rm waits, saying so;
// then the layer goes.
func removeUnderLock(t *testing.T, ref string) {
	const name = "imgrm"
	cleanupWorkload(t, name)
	mustCove(t, "run", "-d", "--name", name, "--network", "none", "--stop-timeout", "1s", ref, "/bin/sh", "-c", "echo mine > /www/mine; exec sleep 1000")
	mine := filepath.Join(workDir, "containers", name, "upper", "www", "mine")
	eventually(t, 10*time.Second, "the run's write in its upper layer", func() bool { _, err := os.Stat(mine); return err == nil })
	release := holdNameLock(t, name)
	rm := startInside(t, "sh", "-c", coveBin+" rm "+name+" 2>&1")
	eventually(t, 10*time.Second, "cove rm to unload the unit while the lock is held", func() bool {
		return show(t, spec.UnitName(name), "LoadState") == "not-found"
	})
	rm.waitLine(t, "waiting for the name "+name) // it says why it has not ended
	select {
	case code := <-rm.done:
		t.Fatalf("cove rm ended (exit %d) while the name's lock is held", code)
	default:
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the writable layer went while the name's lock was held: %v", err)
	}
	release()
	if code := rm.exit(t); code != 0 {
		t.Errorf("cove rm after the lock was released: exit %d", code)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(mine))); !os.IsNotExist(err) {
		t.Errorf("the writable layer after cove rm: %v; want it gone", err)
	}
}

// holdNameLock takes workload name's lock (/run/cove/names/NAME.lock) as
// a cove run starting would hold it, with flock(1) inside the sandbox,
// until the returned function (or the test's cleanup) lets it go.
func holdNameLock(t *testing.T, name string) func() {
	t.Helper()
	lock, release := "/run/cove/names/"+name+".lock", "/run/cove/names/"+name+".release"
	inside(t, "mkdir", "-p", "/run/cove/names")
	inside(t, "rm", "-f", release)
	t.Cleanup(func() { inside(t, "sh", "-c", "touch "+release+"; sleep 0.2; rm -f "+release) }) // ends the holder's loop
	// -o: the loop does not inherit the lock; flock holds it until the loop ends.
	holder := startInside(t, "flock", "-o", lock, "-c", "echo locked; while [ ! -e "+release+" ]; do sleep 0.05; done")
	holder.waitLine(t, "locked")
	return func() {
		inside(t, "touch", release)
		if code := holder.exit(t); code != 0 {
			t.Fatalf("the lock's holder: exit %d", code)
		}
	}
}

// applyOverRun checks that cove apply of a workload whose name a running
// cove run has fails before it changes anything: the run keeps running
// on its writable layer (which the apply's start would have dropped), and
// nothing is declared (cove diff still shows it to add; no file in
// /etc/cove).
func applyOverRun(t *testing.T, ref string) {
	const name = "imgclash"
	cleanupWorkload(t, name)
	mustCove(t, "run", "-d", "--name", name, "--network", "none", ref, "/bin/sh", "-c", "echo mine > /www/mine; exec sleep 1000")
	mine := filepath.Join(workDir, "containers", name, "upper", "www", "mine")
	eventually(t, 10*time.Second, "the run's write in its upper layer", func() bool { _, err := os.Stat(mine); return err == nil })
	path := declaredText(t, filepath.Join(workDir, "clashspecs"), name, "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n")
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	if r := cove(t, "apply", path); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken") {
		t.Errorf("cove apply of a running cove run's name: exit %d, stderr %q; want a refusal", r.Code, r.Stderr)
	}
	if st, tr := show(t, spec.UnitName(name), "ActiveState"), show(t, spec.UnitName(name), "Transient"); st != "active" || tr != "yes" {
		t.Errorf("the run after the refused apply: %s, transient %s; want it running, still cove run's", st, tr)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the run's writable layer after the refused apply: %v", err)
	}
	if out := mustCove(t, "diff", path); !regexp.MustCompile(`(?m)^added\s+` + name + `$`).MatchString(out) {
		t.Errorf("cove diff after the refused apply does not show %s as still to add:\n%s", name, out)
	}
	if inside(t, "test", "-e", "/etc/cove/"+name+".toml").Code == 0 {
		t.Errorf("the refused apply wrote /etc/cove/%s.toml", name)
	}
}

// applyAdopts checks that the first cove apply of a spec whose unit the
// generator made and systemctl started (a spec put in /etc/cove, as a
// package's in /usr/share/cove at boot) takes the workload as it is: the
// apply says it added it and restarts it on the applied spec, on its
// writable layer, which an apply drops for a new workload of a used
// name. A generated unit that never ran adopts nothing: what an earlier
// workload of its name left goes.
func applyAdopts(t *testing.T, ref string) {
	const name, fresh = "imgadopt", "imgfresh"
	text := func(command string) string {
		return "version = 1\nkind = \"container\"\n[container]\nimage = \"" + ref + "\"\nnetwork = \"none\"\n" +
			"command = [\"/bin/sh\", \"-c\", \"" + command + "\"]\n[service]\nstop_timeout = \"1s\"\n"
	}
	t.Cleanup(func() {
		cove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
		inside(t, "sh", "-c", "rm -f /etc/cove/"+name+".toml /etc/cove/"+fresh+".toml; systemctl daemon-reload")
		cove(t, "rm", fresh)
	})
	// What a run of the name fresh left: an upper layer, its unit
	// collected once stopped (as after a reboot).
	mustCove(t, "run", "-d", "--name", fresh, "--network", "none", ref, "/bin/sh", "-c", "echo old > /www/old")
	old := filepath.Join(workDir, "containers", fresh, "upper", "www", "old")
	eventually(t, 10*time.Second, "the run's write in its upper layer", func() bool { _, err := os.Stat(old); return err == nil })
	mustCove(t, "stop", fresh)
	eventually(t, 10*time.Second, "the stopped run's unit collected", func() bool {
		return show(t, spec.UnitName(fresh), "LoadState") == "not-found"
	})
	write := "cat > /etc/cove/" + name + ".toml && printf '%s' '" + text("exec sleep 1000") + "' > /etc/cove/" + fresh + ".toml"
	if r := insideStdin(t, text("echo start >> /www/starts; exec sleep 1000"), "sh", "-c", write+" && systemctl daemon-reload && systemctl start "+spec.UnitName(name)); r.Code != 0 {
		t.Fatalf("write the specs in /etc/cove, daemon-reload, systemctl start: %s", r.Stderr)
	}
	starts := filepath.Join(workDir, "containers", name, "upper", "www", "starts")
	eventually(t, 10*time.Second, "the started unit's write in its upper layer", func() bool { _, err := os.Stat(starts); return err == nil })
	out := mustCove(t, "apply")
	for _, n := range []string{name, fresh} {
		if !regexp.MustCompile(`(?m)^added\s+` + n + `$`).MatchString(out) {
			t.Errorf("cove apply does not say it added %s:\n%s", n, out)
		}
	}
	if st := show(t, spec.UnitName(name), "ActiveState"); st != "active" {
		t.Errorf("the adopted workload after cove apply: %s", st)
	}
	eventually(t, 10*time.Second, "the adopted workload's restart on its own upper layer (two starts)", func() bool { return readFile(t, starts) == "start\nstart\n" })
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("what the earlier run of %s left, after cove apply added a workload of that name whose unit never ran: %v; want it gone", fresh, err)
	}
}

// layerDirs counts the unpacked layers in the store.
func layerDirs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(workDir, "images", "layers", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// imagesListed checks cove images --json.
func imagesListed(t *testing.T, ref string) {
	var rows []struct{ Name, Digest string }
	if err := json.Unmarshal([]byte(mustCove(t, "images", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Name != ref || !strings.HasPrefix(rows[0].Digest, "sha256:") {
		t.Errorf("cove images --json = %+v, want one row named %s", rows, ref)
	}
	// cove image inspect shows the record with the image's configuration;
	// --format reads one field.
	if out := mustCove(t, "image", "inspect", "--format", "{{.Digest}}", ref); strings.TrimSpace(out) != rows[0].Digest {
		t.Errorf("cove image inspect --format '{{.Digest}}' printed %q, want %s", out, rows[0].Digest)
	}
	if out := mustCove(t, "image", "inspect", ref); !strings.Contains(out, "GREETING=from-image") || !strings.Contains(out, rows[0].Digest) {
		t.Errorf("cove image inspect lacks the digest or the config's environment:\n%s", out)
	}
	if r := cove(t, "image", "inspect", "127.0.0.1:1/nothing:1"); r.Code == 0 || !strings.Contains(r.Stderr, "no such image") {
		t.Errorf("cove image inspect of a missing image: exit %d, %s", r.Code, r.Stderr)
	}
	// Shell completion (cobra's __complete, which the bash, zsh and fish
	// scripts call) offers the image's reference.
	if out := mustCove(t, "__complete", "rmi", ""); !strings.Contains(out, ref+"\n") {
		t.Errorf("completing cove rmi does not offer %s:\n%s", ref, out)
	}
}

// runImage runs the image in the foreground: the image's command, user,
// working directory and environment apply; a command replaces CMD; the
// whited-out file is gone; nothing of the run stays in the state
// directory.
func runImage(t *testing.T, ref string) {
	out := mustCove(t, "run", "--rm", ref)
	for _, want := range []string{"image-cmd", "uid=1000(user) gid=1000(user)", "/www", "greeting=from-image", "motd from layer 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("cove run --rm %s: no %q in\n%s", ref, want, out)
		}
	}
	out = mustCove(t, "run", "--rm", "-e", "GREETING=mine", "--user", "0:0", ref, "/bin/sh", "-c", "echo $GREETING; id -u; test -e /etc/hostname || echo no-hostname")
	if out != "mine\n0\nno-hostname\n" {
		t.Errorf("cove run with a command, env and user printed %q", out)
	}
	if out := mustCove(t, "run", "--rm", "-w", "/made/here", ref, "/bin/sh", "-c", "pwd; stat -c '%U %a' ."); out != "/made/here\nroot 755\n" {
		t.Errorf("cove run -w of a directory the image lacks printed %q; want it made, root's, 0755", out)
	}
	// Its writable layer goes at the stop: the overlay never syncs the
	// host's file system, also not when it is unmounted at the exit.
	for _, userns := range []string{"auto", "host"} {
		if opts := rootOverlay(t, mustCove(t, "run", "--rm", "--userns", userns, ref, "cat", "/proc/self/mountinfo")); !volatileOverlay(opts) {
			t.Errorf("cove run --rm --userns %s: the root's overlay is not volatile: %q", userns, opts)
		}
	}
	eventually(t, 5e9, "no state left by cove run --rm", func() bool {
		es, _ := os.ReadDir(filepath.Join(workDir, "containers"))
		return len(es) == 0
	})
}

// declaredImage applies a declared image container: it writes to its
// upper layer, which a restart keeps and apply --prune removes (cove rm
// then has nothing left to remove); the image's
// layers are never written; cove exec runs as the image's user.
func declaredImage(t *testing.T, ref string) {
	dir := filepath.Join(workDir, "imagespecs")
	path := declaredText(t, dir, "imgweb", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n"+
		"command = [\"/bin/sh\", \"-c\", \"echo start >> /www/starts; exec sleep 1000\"]\n[service]\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	mustCove(t, "restart", "imgweb")
	if out := mustCove(t, "__complete", "status", "imgw"); !strings.HasPrefix(out, "imgweb\n") {
		t.Errorf("completing cove status imgw does not offer the workload imgweb:\n%s", out)
	}
	status := mustCove(t, "status", "imgweb")
	var rows []struct{ Digest string }
	if err := json.Unmarshal([]byte(mustCove(t, "images", "--json")), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("cove images --json: %v %+v", err, rows)
	}
	for _, want := range []string{"Image: " + ref, "Image ID: " + rows[0].Digest,
		"Command: /bin/sh -c 'echo start >> /www/starts; exec sleep 1000'", "Working dir: /www", "User: 1000:1000"} {
		label, value, _ := strings.Cut(want, ": ")
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `:\s+` + regexp.QuoteMeta(value) + `$`).MatchString(status) {
			t.Errorf("cove status imgweb lacks %q:\n%s", want, status)
		}
	}
	if out := mustCove(t, "exec", "imgweb", "--", "/bin/sh", "-c", "id -u; cat /www/starts"); out != "1000\nstart\nstart\n" {
		t.Errorf("after a restart, exec printed %q; want uid 1000 and two starts kept in the upper layer", out)
	}
	if opts := rootOverlay(t, mustCove(t, "exec", "imgweb", "--", "cat", "/proc/self/mountinfo")); volatileOverlay(opts) {
		t.Errorf("a declared container's overlay, whose writable layer is kept, is volatile: %q", opts)
	}
	layered := filepath.Join(workDir, "images", "layers", "sha256", "*", "www", "index.html")
	before, _ := filepath.Glob(layered)
	if out := mustCove(t, "exec", "imgweb", "--", "/bin/sh", "-c", "rm /www/index.html; echo mine > /www/index.html; cat /www/index.html"); out != "mine\n" {
		t.Errorf("replacing an image file printed %q", out)
	}
	if after, _ := filepath.Glob(layered); len(before) != 1 || len(after) != 1 || readFile(t, after[0]) != "hi\n" {
		t.Errorf("the image's layer changed when the container replaced /www/index.html: %v, then %v", before, after)
	}
	upper := filepath.Join(workDir, "containers", "imgweb", "upper", "www", "starts")
	if _, err := os.Stat(upper); err != nil {
		t.Errorf("the write is not in the container's upper layer: %v", err)
	}
	if r := cove(t, "rmi", ref); r.Code == 0 || !strings.Contains(r.Stderr, "imgweb") {
		t.Errorf("cove rmi of a used image: exit %d, stderr %q; want a refusal naming imgweb", r.Code, r.Stderr)
	}
	mustCove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	if _, err := os.Stat(filepath.Join(workDir, "containers", "imgweb")); !os.IsNotExist(err) {
		t.Errorf("cove apply --prune left the container's state: %v", err)
	}
	if r := cove(t, "rm", "imgweb"); r.Code != 1 || r.Stderr != "cove: no such workload imgweb\n" {
		t.Errorf("cove rm of a pruned workload: exit %d, stderr %q; want 1 and no such workload", r.Code, r.Stderr)
	}
}

// removeImage: cove rmi refuses an image a running workload uses, and
// with --force stops the workload and removes the image; a prune then
// removes its layers.
func removeImage(t *testing.T, ref string) {
	mustCove(t, "run", "-d", "--name", "rmiuser", "--network", "none", ref, "sleep", "1000")
	t.Cleanup(func() { cove(t, "rm", "-f", "rmiuser") })
	if r := cove(t, "rmi", ref); r.Code == 0 || !strings.Contains(r.Stderr, "rmiuser") {
		t.Errorf("cove rmi of an image a running workload uses: exit %d, stderr %q; want a refusal naming it", r.Code, r.Stderr)
	}
	if out := mustCove(t, "rmi", "--force", ref); !strings.Contains(out, "Untagged: "+ref) {
		t.Errorf("cove rmi --force printed %q", out)
	}
	if st := show(t, "cove-rmiuser.service", "ActiveState"); st == "active" {
		t.Errorf("cove rmi --force left the workload using the image %s", st)
	}
	mustCove(t, "image", "prune")
	if n := layerDirs(t); n != 0 {
		t.Errorf("after rmi and prune the store holds %d layers, want 0", n)
	}
}

// TestImageReboot: at boot, a declared image container whose image is in
// the store starts with no pull unit and no registry; one with
// pull = "always" starts after its pull unit, which fails (and keeps it
// from starting) when the registry is gone.
func TestImageReboot(t *testing.T) {
	env.Need(t)
	ref, reg := testImage(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "imagereboot")
	spec := func(name, extra string) string {
		return declaredText(t, dir, name, "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n"+extra+
			"command = [\"sleep\", \"1000\"]\n[service]\nstop_timeout = \"1s\"\n[install]\nwanted_by = [\"multi-user.target\"]\n")
	}
	mustCove(t, "apply", spec("imgpresent", ""), spec("imgalways", "pull = \"always\"\n"))
	if req := show(t, "cove-imgpresent.service", "Requires"); strings.Contains(req, "pull") {
		t.Errorf("a workload whose image is present requires %q", req)
	}
	if req := show(t, "cove-imgalways.service", "Requires"); !strings.Contains(req, "cove-imgalways-pull.service") {
		t.Errorf("pull = always: Requires=%q, want its pull unit", req)
	}
	reboot(t)
	waitActive(t, "cove-imgalways.service")
	pulled, started := show(t, "cove-imgalways-pull.service", "ActiveEnterTimestampMonotonic"), show(t, "cove-imgalways.service", "ExecMainStartTimestampMonotonic")
	if pulled == "0" || !lessNumeric(pulled, started) {
		t.Errorf("the pull unit became active at %s, the workload started at %s: want the pull first", pulled, started)
	}
	reg.Close()
	reboot(t)
	waitActive(t, "cove-imgpresent.service")
	eventually(t, 30e9, "the pull unit to fail without a registry", func() bool {
		return show(t, "cove-imgalways-pull.service", "ActiveState") == "failed"
	})
	if st := show(t, "cove-imgalways.service", "ActiveState"); st == "active" {
		t.Errorf("imgalways is %s although its pull failed", st)
	}
}

// reboot stops the sandbox's systemd and boots a new one over the same
// /etc and /var/lib.
func reboot(t *testing.T) {
	t.Helper()
	if err := sb.Shutdown(); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	var err error
	if sb, err = boot(); err != nil {
		t.Fatalf("boot again: %v", err)
	}
}

// lessNumeric compares two decimal numbers given as text.
func lessNumeric(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// TestImageUpdate: cove update restarts a workload on the newer image its
// tag names, and when the newer image does not start, points the tag back
// at the previous image and restarts the workload on it. The workload's
// start starts the packaged cove-auto-update.timer (auto_update =
// "registry"), and the timer's service is what finds the newer image.
func TestImageUpdate(t *testing.T) {
	env.Need(t)
	ref, reg := testImage(t)
	pruneAll(t)
	installAutoUpdate(t)
	if st := show(t, spec.AutoUpdateTimer, "ActiveState"); st != "inactive" {
		t.Fatalf("%s is %s before any workload wants it", spec.AutoUpdateTimer, st)
	}
	path := declaredText(t, filepath.Join(workDir, "update"), "upd", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n"+
		"auto_update = \"registry\"\ncommand = [\"sleep\", \"1000\"]\n[service]\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)
	if st := show(t, spec.AutoUpdateTimer, "ActiveState"); st != "active" {
		t.Errorf("%s is %s after a workload with auto_update started, want active", spec.AutoUpdateTimer, st)
	}
	if out := mustCove(t, "update", "--auto"); !strings.Contains(out, "upd: up to date") {
		t.Errorf("cove update of an unchanged tag printed %q", out)
	}
	marker := filepath.Join(workDir, "layer-v2")
	for _, d := range []string{"etc", "www"} { // www: the image's working directory
		if err := os.MkdirAll(filepath.Join(marker, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(marker, "etc", "motd"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, "cove/test:1", imageConfig, rootfs, marker)
	if r := inside(t, "systemctl", "start", "cove-auto-update.service"); r.Code != 0 {
		t.Fatalf("the timer's service: exit %d: %s", r.Code, r.Stderr)
	}
	if out := inside(t, "journalctl", "-u", "cove-auto-update.service", "-o", "cat").Stdout; !strings.Contains(out, "upd: updated to sha256:") {
		t.Errorf("cove-auto-update.service logged %q", out)
	}
	if out := mustCove(t, "exec", "upd", "--", "cat", "/etc/motd"); out != "v2\n" {
		t.Errorf("after the update the container has motd %q, want v2", out)
	}
	broken := imageConfig
	broken.Entrypoint = []string{"/nonexistent"}
	pushImage(t, reg, "cove/test:1", broken, rootfs)
	if r := cove(t, "update", "upd"); r.Code != 1 || !strings.Contains(r.Stdout, "rolled back") {
		t.Errorf("cove update to a broken image: exit %d, stdout %q, stderr %q; want a roll back", r.Code, r.Stdout, r.Stderr)
	}
	waitActive(t, "cove-upd.service")
	if out := mustCove(t, "exec", "upd", "--", "cat", "/etc/motd"); out != "v2\n" {
		t.Errorf("after the roll back the container has motd %q, want v2", out)
	}
}

// TestImageUpdateNotReady: an update to an image on which the workload
// runs but never becomes ready (ready = "tcp:PORT": the new image's file
// makes the command sleep instead of serving, then exit) is rolled back:
// cove update exits 1 saying so, and the workload runs ready on the
// previous image again.
func TestImageUpdateNotReady(t *testing.T) {
	env.Need(t)
	ref, reg := testImage(t)
	path := declaredText(t, filepath.Join(workDir, "update-ready"), "updready", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n"+
		"network = \"none\"\ncommand = [\"/bin/sh\", \"-c\", \"test -e /etc/not-ready && exec sleep 3; exec httpd -f -p 127.0.0.1:8098 -h /www\"]\n"+
		"[service]\nready = \"tcp:8098\"\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	notReady := filepath.Join(workDir, "layer-not-ready")
	if err := os.MkdirAll(filepath.Join(notReady, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notReady, "etc", "not-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, "cove/test:1", imageConfig, rootfs, notReady)
	if r := cove(t, "update", "updready"); r.Code != 1 || !strings.Contains(r.Stdout, "did not become ready; rolled back") {
		t.Errorf("cove update to an image that never gets ready: exit %d, stdout %q, stderr %q; want a roll back", r.Code, r.Stdout, r.Stderr)
	}
	waitActive(t, "cove-updready.service")
	if r := cove(t, "exec", "updready", "--", "test", "-e", "/etc/not-ready"); r.Code == 0 {
		t.Error("after the roll back the container runs the image that never got ready")
	}
}

// TestImageStoreMoved: with [images] store in cove.toml, a pull stores
// the image there (not under /var/lib/cove/images), cove images lists it
// and a container runs from it. Before the first pull, the generator's
// look at a declared image spec's store (at boot the file system it is on
// may not be mounted yet) and cove render create nothing.
func TestImageStoreMoved(t *testing.T) {
	env.Need(t)
	ref, _ := testImage(t)
	moved := filepath.Join(workDir, "images-moved")
	settings := hostSettings + "[images]\nstore = \"" + moved + "\"\n"
	if r := insideStdin(t, settings, "sh", "-c", "cat > /etc/cove/cove.toml"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	t.Cleanup(func() {
		inside(t, "sh", "-c", "rm -f /etc/cove/movedgen.toml; systemctl daemon-reload")
		insideStdin(t, hostSettings, "sh", "-c", "cat > /etc/cove/cove.toml")
		os.RemoveAll(moved)
	})
	declared := "version = 1\nkind = \"container\"\n[container]\nimage = \"" + ref + "\"\nnetwork = \"none\"\n"
	if r := insideStdin(t, declared, "sh", "-c", "cat > /etc/cove/movedgen.toml && systemctl daemon-reload"); r.Code != 0 {
		t.Fatalf("declare movedgen, daemon-reload: %s", r.Stderr)
	}
	mustCove(t, "render", "/etc/cove/movedgen.toml")
	if pull := show(t, "cove-movedgen-pull.service", "LoadState"); pull != "loaded" {
		t.Errorf("the pull unit of a declared image not in the store: LoadState=%s, want loaded", pull)
	}
	if _, err := os.Stat(moved); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("before any pull, the generator or cove render made the store %s (stat: %v)", moved, err)
	}
	records := func(root string) int {
		recs, _ := filepath.Glob(filepath.Join(root, "images", "sha256", "*.json"))
		return len(recs)
	}
	before := records(filepath.Join(workDir, "images"))
	mustCove(t, "pull", ref)
	if n, d := records(moved), records(filepath.Join(workDir, "images")); n != 1 || d != before {
		t.Errorf("after the pull the moved store holds %d image records (want 1), the default %d (want %d as before)", n, d, before)
	}
	if !strings.Contains(mustCove(t, "images"), ref[:strings.LastIndex(ref, ":")]) {
		t.Errorf("cove images does not list %s from the moved store", ref)
	}
	if out := mustCove(t, "run", "--rm", "--network", "none", ref, "cat", "/etc/motd"); out != "motd from layer 2\n" {
		t.Errorf("a container of the moved store's image printed %q", out)
	}
}

// installAutoUpdate installs packaging's cove-auto-update.timer and
// .service into /etc/systemd/system, the service running the test's
// cove; when t ends they are stopped and removed.
func installAutoUpdate(t *testing.T) {
	t.Helper()
	for _, name := range []string{spec.AutoUpdateTimer, "cove-auto-update.service"} {
		text, err := os.ReadFile(filepath.Join("..", "packaging", name))
		if err != nil {
			t.Fatal(err)
		}
		unit := strings.ReplaceAll(string(text), "/usr/bin/cove", coveBin)
		if r := insideStdin(t, unit, "sh", "-c", "cat > /etc/systemd/system/"+name); r.Code != 0 {
			t.Fatalf("install %s: %s", name, r.Stderr)
		}
	}
	if r := inside(t, "systemctl", "daemon-reload"); r.Code != 0 {
		t.Fatalf("daemon-reload: %s", r.Stderr)
	}
	t.Cleanup(func() {
		inside(t, "systemctl", "stop", spec.AutoUpdateTimer, "cove-auto-update.service")
		inside(t, "rm", "-f", "/etc/systemd/system/"+spec.AutoUpdateTimer, "/etc/systemd/system/cove-auto-update.service")
		inside(t, "systemctl", "daemon-reload")
	})
}

// leftOverState: a writable layer that an earlier container of the same
// name left (its unit gone, e.g. after a reboot) is not reused by a new
// container, and cove rm removes such a layer.
func leftOverState(t *testing.T, ref string) {
	for _, name := range []string{"stale", "orphan"} {
		planted := filepath.Join(workDir, "containers", name, "upper", "www", "planted")
		if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(planted, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(workDir, "containers", name, "image-digest"), []byte("sha256:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := cove(t, "run", "--rm", "--name", "stale", ref, "cat", "/www/planted"); r.Code == 0 {
		t.Errorf("a new container saw the earlier one's file: %q", r.Stdout)
	}
	mustCove(t, "rm", "orphan")
	if _, err := os.Stat(filepath.Join(workDir, "containers", "orphan")); !os.IsNotExist(err) {
		t.Errorf("cove rm left the orphaned writable layer: %v", err)
	}
	// What a crash during a removed run leaves: a volatile overlay's
	// marker, and the record of its image, never synced, empty.
	crashed := filepath.Join(workDir, "containers", "crashed")
	if err := os.MkdirAll(filepath.Join(crashed, "work", "work", "incompat", "volatile"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, "image-digest"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustCove(t, "ps"); !strings.Contains(out, "crashed") {
		t.Errorf("cove ps does not list what a crashed removed run left:\n%s", out)
	}
	mustCove(t, "rm", "crashed")
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Errorf("cove rm left a crashed removed run's writable layer: %v", err)
	}
}

// volatileImage: with volatile = true an image container's writes live in
// memory: a restart loses them and nothing reaches its state directory.
func volatileImage(t *testing.T, ref string) {
	path := declaredText(t, filepath.Join(workDir, "volatilespecs"), "imgvol", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\nvolatile = true\n"+
		"command = [\"/bin/sh\", \"-c\", \"echo start >> /www/starts; exec sleep 1000\"]\n[service]\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	mustCove(t, "restart", "imgvol")
	if out := mustCove(t, "exec", "imgvol", "--", "cat", "/www/starts"); out != "start\n" {
		t.Errorf("after a restart a volatile container has %q in /www/starts, want one start", out)
	}
	if _, err := os.Stat(filepath.Join(workDir, "containers", "imgvol", "upper", "www")); !os.IsNotExist(err) {
		t.Errorf("a volatile container wrote to its state directory: %v", err)
	}
}

// failedPull: cove apply of a spec whose image cannot be pulled fails and
// leaves no spec, no applied copy and no unit.
func failedPull(t *testing.T, ref string) {
	missing := strings.Replace(ref, ":1", ":no-such-tag", 1)
	path := declaredText(t, filepath.Join(workDir, "badpull"), "badpull", "version = 1\nkind = \"container\"\n[container]\nimage = \""+missing+"\"\n")
	if r := cove(t, "apply", path); r.Code != 1 || !strings.Contains(r.Stderr, "no-such-tag") {
		t.Errorf("cove apply of an image that is not there: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := inside(t, "test", "-e", "/etc/cove/badpull.toml"); r.Code == 0 {
		t.Error("the failed apply wrote the spec")
	}
	if units := listUnits(t); strings.Contains(units, "cove-badpull") {
		t.Errorf("the failed apply left a unit:\n%s", units)
	}
}

// TestImageStopSignal: an image's STOPSIGNAL becomes the unit's
// KillSignal=, so cove stop sends it: the payload, PID 1 of its namespace
// with a handler only for SIGUSR1, exits 0 (SIGTERM it would ignore, and
// the stop would end in SIGKILL); --stop-signal overrides the image's; a
// run that pulls the image gets it as well, the pulled image's, and so
// does a declared container.
func TestImageStopSignal(t *testing.T) {
	env.Need(t)
	_, reg := testImage(t)
	cfg := imageConfig
	cfg.StopSignal, cfg.WorkingDir = "SIGUSR1", "/"
	cfg.Cmd = []string{"/bin/sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.1; done"}
	ref := pushImage(t, reg, "cove/stopsig:1", cfg, rootfs)
	mustCove(t, "pull", ref)
	t.Cleanup(func() {
		cove(t, "rm", "-f", "stopsig", "stopquit", "stoppull", "stopalways")
		cove(t, "rmi", "--force", ref)
		cove(t, "image", "prune")
	})
	mustCove(t, "run", "-d", "--name", "stopsig", "--stop-timeout", "5s", ref)
	if got := show(t, "cove-stopsig.service", "KillSignal"); got != "10" {
		t.Errorf("cove-stopsig.service: KillSignal=%s, want 10 (SIGUSR1, the image's STOPSIGNAL)", got)
	}
	mustCove(t, "stop", "stopsig")
	if res := show(t, "cove-stopsig.service", "Result"); res != "success" {
		t.Errorf("cove stop of an image with STOPSIGNAL SIGUSR1: Result=%s, want success (the payload exits 0 on SIGUSR1)", res)
	}
	if logs := mustCove(t, "logs", "stopsig"); !strings.Contains(logs, "got-usr1") {
		t.Errorf("the payload never got SIGUSR1; logs:\n%s", logs)
	}
	mustCove(t, "run", "-d", "--name", "stopquit", "--stop-signal", "QUIT", ref)
	if got := show(t, "cove-stopquit.service", "KillSignal"); got != "3" {
		t.Errorf("--stop-signal QUIT: KillSignal=%s, want 3", got)
	}
	// A run that pulls the image (not in the store before) pins it too.
	mustCove(t, "rm", "-f", "stopsig", "stopquit")
	mustCove(t, "rmi", ref)
	mustCove(t, "run", "-d", "--name", "stoppull", ref)
	if got := show(t, "cove-stoppull.service", "KillSignal"); got != "10" {
		t.Errorf("a run that pulled the image: KillSignal=%s, want 10 (SIGUSR1, the image's STOPSIGNAL)", got)
	}
	// pull = "always": the pulled image's STOPSIGNAL, not the store's
	// earlier copy's.
	cfg.StopSignal = "SIGUSR2"
	pushImage(t, reg, "cove/stopsig:1", cfg, rootfs)
	mustCove(t, "run", "-d", "--name", "stopalways", "--pull", "always", ref)
	if got := show(t, "cove-stopalways.service", "KillSignal"); got != "12" {
		t.Errorf("a run with --pull always of an image whose STOPSIGNAL is now SIGUSR2: KillSignal=%s, want 12", got)
	}
	// A declared one: the generator writes the image's, as in the store.
	path := declaredText(t, filepath.Join(workDir, "stopspecs"), "stopdecl", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n[service]\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	if got := show(t, "cove-stopdecl.service", "KillSignal"); got != "12" {
		t.Errorf("a declared container of the image: KillSignal=%s, want 12 (SIGUSR2, the image's STOPSIGNAL)", got)
	}
	if out := mustCove(t, "diff", path); !regexp.MustCompile(`(?m)^unchanged\s+stopdecl$`).MatchString(out) {
		t.Errorf("cove diff of the applied spec (the image's STOPSIGNAL pinned on both sides) is not unchanged:\n%s", out)
	}
	stopBeforePull(t, reg, cfg)
}

// stopBeforePull: a declared container whose unit the generator wrote
// before its image was in the store (its pull unit fetches it at start),
// so with no STOPSIGNAL pinned, is stopped with the image's STOPSIGNAL
// all the same: the stop stage reads it when it stops.
func stopBeforePull(t *testing.T, reg *registry.Registry, cfg v1.Config) {
	const name = "stopboot"
	cfg.StopSignal = "SIGUSR1"
	ref := pushImage(t, reg, "cove/stopsig:boot", cfg, rootfs)
	t.Cleanup(func() {
		inside(t, "sh", "-c", "systemctl stop "+spec.UnitName(name)+"; rm -f /etc/cove/"+name+".toml; systemctl daemon-reload")
		cove(t, "rm", name)
		cove(t, "rmi", "--force", ref)
	})
	text := "version = 1\nkind = \"container\"\n[container]\nimage = \"" + ref + "\"\nnetwork = \"none\"\n[service]\nstop_timeout = \"5s\"\n"
	if r := insideStdin(t, text, "sh", "-c", "cat > /etc/cove/"+name+".toml && systemctl daemon-reload && systemctl start "+spec.UnitName(name)); r.Code != 0 {
		t.Fatalf("write /etc/cove/%s.toml, daemon-reload, systemctl start: %s", name, r.Stderr)
	}
	if got := show(t, spec.UnitName(name), "KillSignal"); got != "15" {
		t.Fatalf("%s, written before its pull: KillSignal=%s, want 15 (nothing pinned)", spec.UnitName(name), got)
	}
	eventually(t, 10*time.Second, "the payload's trap set", func() bool { return strings.Contains(cove(t, "logs", name).Stdout, "ready") })
	if r := inside(t, "systemctl", "stop", spec.UnitName(name)); r.Code != 0 {
		t.Fatalf("systemctl stop %s: %s", spec.UnitName(name), r.Stderr)
	}
	if logs := mustCove(t, "logs", name); !strings.Contains(logs, "got-usr1") {
		t.Errorf("the payload never got SIGUSR1, its image's STOPSIGNAL; logs:\n%s", logs)
	}
	if res := show(t, spec.UnitName(name), "Result"); res != "success" {
		t.Errorf("%s after its stop: Result=%s, want success", spec.UnitName(name), res)
	}
	// cove rm of the declared workload, whose stopped unit stays loaded
	// (its unit file's): its writable layer goes.
	state := filepath.Join(workDir, "containers", name)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("%s's writable layer before cove rm: %v", name, err)
	}
	mustCove(t, "rm", name)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("%s's writable layer after cove rm: %v; want it gone", name, err)
	}
}

// volatileOverlay reports whether an overlay's super options say it never
// syncs: "volatile", shown as "fsync=volatile" since Linux 6.12.
func volatileOverlay(opts []string) bool {
	return slices.Contains(opts, "volatile") || slices.Contains(opts, "fsync=volatile")
}

// rootOverlay is the super options of the overlay mounted on "/" in
// mountinfo (a container's /proc/self/mountinfo).
func rootOverlay(t *testing.T, mountinfo string) []string {
	t.Helper()
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		_, super, ok := strings.Cut(line, " - ")
		if s := strings.Fields(super); ok && len(f) > 4 && f[4] == "/" && len(s) == 3 && s[0] == "overlay" {
			return strings.Split(s[2], ",")
		}
	}
	t.Fatalf("no overlay on / in the container's mountinfo:\n%s", mountinfo)
	return nil
}
