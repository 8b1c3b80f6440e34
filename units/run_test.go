package units

import (
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
)

// TestRunKeepsKillAFailure: a run that stays loaded after its payload
// exits (RemainAfterExit=, restart "no" without --rm) counts no death by
// SIGKILL as clean, as such a unit runs no post stage at the exit; an
// init's clean statuses stay. Other runs keep SIGKILL clean.
func TestRunKeepsKillAFailure(t *testing.T) {
	s := spec.Defaults("run")
	s.Container.Rootfs = "/srv/rootfs"
	s.Container.Command = []string{"/bin/true"}
	for _, c := range []struct {
		init bool
		opt  RunOptions
		want string // SuccessExitStatus=, "" for none
	}{
		{false, RunOptions{Restart: "no"}, ""},
		{true, RunOptions{Restart: "no"}, "129 130 141 143"},
		{false, RunOptions{Restart: "no", Remove: true}, "SIGKILL"},
		{false, RunOptions{Restart: "on-failure"}, "SIGKILL"},
	} {
		s.Service.Init = c.init
		text, err := ForRun(compile(t, s), c.opt).Text("run.toml")
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(l, "SuccessExitStatus="); ok {
				got = v
			}
		}
		if got != c.want {
			t.Errorf("init %v, %+v: SuccessExitStatus=%q, want %q", c.init, c.opt, got, c.want)
		}
	}
}
