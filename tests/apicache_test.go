package tests

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPIListFollowsChanges: the helper keeps workload state and the
// list of units between requests (fed by systemd's change signals);
// whatever changes a workload outside the API, the next list through the
// API says what systemd says, right after the change.
func TestAPIListFollowsChanges(t *testing.T) {
	needAPI(t)
	paths := applyDeclared(t, "api-cache", "cache1", "cache2")
	// A followed log keeps one helper alive for the whole test.
	follow := startInside(t, coveBin, "--host", apiHost, "logs", "-f", "cache1")
	follow.waitLine(t, "started cache1")
	helper := show(t, apiSvc, "MainPID")
	volatile := regexp.MustCompile(`"(memory_bytes|tasks)": \d+,?\n`)
	same := func(after string) {
		t.Helper()
		local, remote := mustCove(t, "ps", "--json"), viaAPI(t, "ps", "--json")
		if remote.Code != 0 || volatile.ReplaceAllString(local, "") != volatile.ReplaceAllString(remote.Stdout, "") {
			t.Errorf("after %s, cove ps --json differs through the API:\nlocal:\n%s\nremote (exit %d):\n%s%s",
				after, local, remote.Code, remote.Stdout, remote.Stderr)
		}
	}
	same("apply")
	for _, step := range [][]string{
		{"systemctl", "stop", "cove-cache2.service"},
		{"systemctl", "start", "cove-cache2.service"},
		{"systemctl", "restart", "cove-cache2.service"},
		{"systemctl", "kill", "--kill-who=main", "--signal=SIGKILL", "cove-cache2.service"},
		{"systemctl", "daemon-reload"},
		{"systemctl", "stop", "cove-cache1.service"},
		{"systemctl", "start", "cove-cache1.service"},
	} {
		if r := inside(t, step[0], step[1:]...); r.Code != 0 {
			t.Fatalf("%v: exit %d: %s", step, r.Code, r.Stderr)
		}
		// systemctl kill does not wait: the unit passes through its stop
		// stages (deactivating), where two reads may rightly differ.
		eventually(t, 10*time.Second, "cove-cache2 to settle", func() bool {
			return show(t, "cove-cache2.service", "ActiveState") != "deactivating"
		})
		same(strings.Join(step, " "))
	}
	// A changed spec: new unit text, a reload and a restart.
	declared(t, filepath.Dir(paths[1]), "cache2", "restart = \"on-failure\"\n")
	mustCove(t, append([]string{"apply"}, paths...)...)
	same("apply of a changed spec")

	// Counters systemd does not signal are current, as systemd reads them.
	var tasks string
	eventually(t, 10*time.Second, "the API to report cache1's tasks", func() bool {
		r := viaAPI(t, "ps", "--json")
		m := regexp.MustCompile(`"name": "cache1",(?s:[^}]*)"tasks": (\d+)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			return false
		}
		tasks = m[1]
		return true
	})
	if want := show(t, "cove-cache1.service", "TasksCurrent"); tasks != want {
		t.Errorf("tasks of cache1 through the API: %s, systemd says %s", tasks, want)
	}
	if n, _ := strconv.Atoi(tasks); n < 1 {
		t.Errorf("tasks of cache1: %q", tasks)
	}
	if now := show(t, apiSvc, "MainPID"); now != helper {
		t.Errorf("the helper changed during the test (MainPID %s → %s)", helper, now)
	}
	// The helper says at exit how it answered: the cache must have served.
	follow.cancel()
	waitHelperGone(t)
	out := inside(t, "journalctl", "-o", "cat", "_PID="+helper).Stdout
	m := regexp.MustCompile(`answered from the cache (\d+) times, fetched from systemd (\d+) times; lists of units repeated (\d+) times`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" || m[3] == "0" {
		t.Errorf("the helper's exit record shows no answer or no list of units from the cache:\n%s", out)
	}
}
