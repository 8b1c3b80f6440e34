package units

import (
	"strings"
	"testing"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// TestRunKeepsKillAFailure: a run that stays loaded after its payload
// exits (RemainAfterExit=, restart "no" without --rm) counts no death by
// SIGKILL as clean, as such a unit runs no post stage at the exit; an
// init's clean statuses stay. Other runs keep SIGKILL clean. Where SIGKILL
// is clean the ExecStop= stage judges it (no ExecStopPost=); where it is
// not, systemd skips ExecStop=, so the run gets the gated post stage,
// once (an init's unit has it already).
func TestRunKeepsKillAFailure(t *testing.T) {
	s := spec.Defaults("run")
	s.Container.Rootfs = "/srv/rootfs"
	s.Container.Command = []string{"/bin/true"}
	const post = `"/bin/sh" "-c" "[ \"$$EXIT_CODE\" = exited ] && [ \"$$EXIT_STATUS\" != 137 ] || exec \"$$0\" \"$$@\"" "/usr/bin/cove-launch" "launch-stop" "--post" "run"`
	for _, c := range []struct {
		init       bool
		opt        RunOptions
		want, post string // SuccessExitStatus= and ExecStopPost=, "" for none
	}{
		{false, RunOptions{Restart: "no"}, "", post},
		{true, RunOptions{Restart: "no"}, "129 130 141 143", post},
		{false, RunOptions{Restart: "no", Remove: true}, "SIGKILL", ""},
		{false, RunOptions{Restart: "on-failure"}, "SIGKILL", ""},
	} {
		s.Service.Init = c.init
		u := ForRun(compile(t, s), c.opt)
		if got := lastDirective(t, u, "SuccessExitStatus"); got != c.want {
			t.Errorf("init %v, %+v: SuccessExitStatus=%q, want %q", c.init, c.opt, got, c.want)
		}
		if got := lastDirective(t, u, "ExecStopPost"); got != c.post {
			t.Errorf("init %v, %+v: ExecStopPost=%s, want %s", c.init, c.opt, got, c.post)
		}
		if text, _ := u.Text("run.toml"); strings.Count(text, "ExecStopPost=") > 1 {
			t.Errorf("init %v, %+v: more than one ExecStopPost=", c.init, c.opt)
		}
	}
}

// TestRunRemovesState: with --rm, what a workload keeps (Kept: an image
// container's writable layer, a VM's state) goes when its unit stops, by
// rm after the other stop stages, and the record of a container's user
// namespace IDs is in a runtime directory systemd removes (no process);
// a rootfs container keeps nothing else, and a run without --rm keeps its
// state and its IDs for cove rm.
func TestRunRemovesState(t *testing.T) {
	image := spec.Defaults("web")
	image.Container.Image = "registry.example/web:1"
	image.Container.Network = spec.NetworkNone // a user namespace by default
	rootfs := spec.Defaults("plain")
	rootfs.Container.Rootfs = "/srv/rootfs"
	private := spec.Defaults("private")
	private.Container.Rootfs = "/srv/rootfs"
	private.Security.UserNS = spec.UserNSAuto
	vm := spec.VMDefaults("guest")
	for _, c := range []struct {
		s          *spec.Spec
		remove     bool
		rm, runDir string // the last ExecStopPost= and RuntimeDirectory=, "" for none
	}{
		{image, true, `"/bin/rm" "-rf" "--one-file-system" "--" "/var/lib/cove/containers/web"`, `"cove/userns/web"`},
		{private, true, "", `"cove/userns/private"`},
		{vm, true, `"/bin/rm" "-rf" "--one-file-system" "--" "/var/lib/cove/vms/guest"`, ""},
		{rootfs, true, "", ""},
		{image, false, "", ""},
	} {
		u := ForRun(Unit{Name: spec.UnitName(c.s.Name)}, RunOptionsFor(c.s, c.remove, false))
		if got := lastDirective(t, u, "ExecStopPost"); got != c.rm {
			t.Errorf("%s, remove %v: ExecStopPost=%s, want %s", c.s.Name, c.remove, got, c.rm)
		}
		if got := lastDirective(t, u, "RuntimeDirectory"); got != c.runDir {
			t.Errorf("%s, remove %v: RuntimeDirectory=%s, want %s", c.s.Name, c.remove, got, c.runDir)
		}
		if want := map[bool]string{true: "restart", false: ""}[c.runDir != ""]; lastDirective(t, u, "RuntimeDirectoryPreserve") != want {
			t.Errorf("%s, remove %v: RuntimeDirectoryPreserve=%s, want %s", c.s.Name, c.remove, lastDirective(t, u, "RuntimeDirectoryPreserve"), want)
		}
	}
}

// lastDirective is the value of the last directive name= in u's unit
// file text, "" when it has none.
func lastDirective(t *testing.T, u Unit, name string) string {
	t.Helper()
	text, err := u.Text("run.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			got = v
		}
	}
	return got
}

// TestRunRemovedStopsBySystemd: a removed run of a container without an
// init and a memory limit has no stop stage: systemd sends the stop
// signal to the main process (KillMode=mixed), SIGKILL to the rest after
// stop_timeout (no margin for a stage) and counts a death by SIGKILL as
// unclean; so no process is forked after its payload exits. With an init,
// a memory limit, a terminal, without --rm, and for a VM, the stop stage
// stays.
func TestRunRemovedStopsBySystemd(t *testing.T) {
	plain := spec.Defaults("plain")
	plain.Container.Rootfs = "/srv/rootfs"
	plain.Container.Command = []string{"/bin/true"}
	plain.Service.StopSignal = "SIGQUIT"
	withInit, limited := *plain, *plain
	withInit.Service.Init = true
	limited.Resources.Memory = 64 << 20
	vm := spec.VMDefaults("guest")
	for _, c := range []struct {
		s                            *spec.Spec
		remove, terminal, systemStop bool
	}{
		{plain, true, false, true},
		{plain, false, false, false},
		{plain, true, true, false},
		{&withInit, true, false, false},
		{&limited, true, false, false},
		{vm, true, false, false},
	} {
		u := ForRun(compile(t, c.s), RunOptionsFor(c.s, c.remove, c.terminal))
		stop, kill, timeout := lastDirective(t, u, "ExecStop"), lastDirective(t, u, "KillMode"), lastDirective(t, u, "TimeoutStopSec")
		if !c.systemStop {
			if stop == "" || kill == "mixed" {
				t.Errorf("%s, remove %v: ExecStop=%q KillMode=%s; want the stop stage", c.s.Name, c.remove, stop, kill)
			}
			continue
		}
		if stop != "" || kill != "mixed" || timeout != "10s" || lastDirective(t, u, "KillSignal") != "SIGQUIT" {
			t.Errorf("%s: ExecStop=%q KillMode=%s TimeoutStopSec=%s KillSignal=%s; want none, mixed, 10s, SIGQUIT",
				c.s.Name, stop, kill, timeout, lastDirective(t, u, "KillSignal"))
		}
		if got := lastDirective(t, u, "SuccessExitStatus") + lastDirective(t, u, "ExecStopPost"); got != "" {
			t.Errorf("%s: SuccessExitStatus= or ExecStopPost= %q; want SIGKILL unclean and no post stage", c.s.Name, got)
		}
	}
}

// TestStopImageSignal: the stop stage of an image container whose stop
// signal is not pinned reads the image's STOPSIGNAL when it stops
// (--image-signal); a pinned or given one, a container with an init and
// a rootfs container do not.
func TestStopImageSignal(t *testing.T) {
	for _, c := range []struct {
		image, signal string
		init, want    bool
	}{
		{"registry.example:5000/app:1", "", false, true},
		{"registry.example:5000/app:1", "SIGQUIT", false, false},
		{"registry.example:5000/app:1", "", true, false},
		{"", "", false, false},
	} {
		s := spec.Defaults("stopper")
		s.Container.Image, s.Service.StopSignal, s.Service.Init = c.image, c.signal, c.init
		if c.image == "" {
			s.Container.Rootfs = "/srv/rootfs"
		}
		stop := lastDirective(t, compile(t, s), "ExecStop")
		if stop == "" {
			t.Fatalf("image %q: no ExecStop=", c.image)
		}
		if got := strings.Contains(stop, `"--image-signal" "stopper"`); got != c.want {
			t.Errorf("image %q, stop signal %q, init %v: ExecStop=%s; want --image-signal: %v", c.image, c.signal, c.init, stop, c.want)
		}
	}
}

// TestRunThrowawayLayer checks that a removed run of an image container
// tells its launcher that the writable layer goes at the stop
// (launch.Image.Throwaway: a volatile overlay), and that nothing else
// does: a kept layer is mounted again and must be synced.
func TestRunThrowawayLayer(t *testing.T) {
	image := spec.Defaults("web")
	image.Container.Image = "registry.example/web:1"
	rootfs := spec.Defaults("plain")
	rootfs.Container.Rootfs = "/srv/rootfs"
	rootfs.Container.Command = []string{"/bin/true"}
	for _, c := range []struct {
		s      *spec.Spec
		remove bool
		want   bool
	}{{image, true, true}, {image, false, false}, {rootfs, true, false}} {
		u, err := Compile(c.s, Options{Launcher: "/usr/bin/cove"})
		if err != nil {
			t.Fatal(err)
		}
		u = ForRun(u, RunOptionsFor(c.s, c.remove, false))
		cmd := u.Props[launcherStart(u.Props)].Value.(Exec)
		cfg, err := launch.ParseArgs(cmd[2:])
		if err != nil || cfg.Image.Throwaway != c.want {
			t.Errorf("%s, remove %v: the launcher's Image.Throwaway = %v (%v), want %v; ExecStart=%q", c.s.Name, c.remove, cfg.Image.Throwaway, err, c.want, cmd)
		}
	}
}
