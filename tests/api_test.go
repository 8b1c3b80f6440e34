package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/registry"
)

// The API as the tests install it: the real packaging units, with
// ExecStart pointing at the test's cove and an idle exit of 2 s.
const (
	apiSock    = "/run/cove/api.sock"
	apiHost    = "unix://" + apiSock
	apiSvc     = "cove-api.service"
	apiIdle    = 2 * time.Second
	memberUser = "covemember"   // in group cove
	otherUser  = "coveoutsider" // not in group cove
)

// apiSetup installs the API once per run.
var apiSetup struct {
	once sync.Once
	err  error
}

// needAPI skips without a sandbox, installs the API on first use and
// makes sure its socket listens.
func needAPI(t *testing.T) {
	t.Helper()
	env.Need(t)
	apiSetup.once.Do(func() { apiSetup.err = installAPI() })
	if apiSetup.err != nil {
		t.Fatalf("install the API: %v", apiSetup.err)
	}
	// The socket is started, not enabled: after TestReboot's new systemd it
	// must be started again.
	if st := show(t, "cove-api.socket", "ActiveState"); st != "active" {
		if r := inside(t, "systemctl", "start", "cove-api.socket"); r.Code != 0 {
			t.Fatalf("start cove-api.socket (was %s): %s", st, r.Stderr)
		}
	}
}

// installAPI installs packaging/cove-api.{socket,service} into
// /etc/systemd/system (an overlay) with ExecStart at the test's cove and
// --idle 2s, creates group cove from packaging/sysusers.d/cove.conf, a
// member and a non-member user, and starts the socket. Other users need
// to run the test's cove binary, so its directories become
// world-readable.
func installAPI() error {
	// The checkout may be under /tmp, which is private inside the sandbox:
	// copy the packaging files to the shared work directory.
	pkg := filepath.Join(workDir, "packaging")
	if err := os.CopyFS(pkg, os.DirFS("../packaging")); err != nil {
		return fmt.Errorf("copy packaging: %w", err)
	}
	for _, d := range []string{workDir, filepath.Dir(coveBin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	script := fmt.Sprintf(`set -e
systemd-sysusers %[1]s/sysusers.d/cove.conf
useradd -M %[3]s
useradd -M -G cove %[4]s
cp %[1]s/cove-api.socket /etc/systemd/system/
sed -e 's|/usr/bin/cove|%[2]s|' -e 's|--idle 30s|--idle %[5]s|' %[1]s/cove-api.service > /etc/systemd/system/cove-api.service
grep -q 'ExecStart=%[2]s api serve --idle %[5]s' /etc/systemd/system/cove-api.service
systemctl daemon-reload
systemctl start cove-api.socket
`, pkg, coveBin, otherUser, memberUser, apiIdle)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut, code, err := sb.Run(ctx, "sh", "-c", script)
	if err != nil || code != 0 {
		return fmt.Errorf("exit %d: %v\n%s%s", code, err, out, errOut)
	}
	return nil
}

// viaAPI runs cove --host (the API) inside as root.
func viaAPI(t *testing.T, args ...string) result {
	t.Helper()
	return cove(t, append([]string{"--host", apiHost}, args...)...)
}

// asUser runs cove inside as user (with its groups), without --host: a
// non-root cove uses the API at its default socket.
func asUser(t *testing.T, user string, args ...string) result {
	t.Helper()
	return inside(t, "setpriv", append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups", "--", coveBin}, args...)...)
}

// waitHelperGone waits until the helper has exited.
func waitHelperGone(t *testing.T) {
	t.Helper()
	eventually(t, apiIdle+15*time.Second, "cove-api.service to exit", func() bool {
		st := show(t, apiSvc, "ActiveState")
		return st == "inactive" || st == "failed"
	})
}

// killHelper SIGKILLs the helper's main process only (as a crash would).
func killHelper(t *testing.T) {
	t.Helper()
	if r := inside(t, "systemctl", "kill", "--kill-who=main", "--signal=SIGKILL", apiSvc); r.Code != 0 {
		t.Fatalf("kill the helper: %s", r.Stderr)
	}
}

// mainPIDs reads the MainPID of each workload.
func mainPIDs(t *testing.T, names ...string) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for _, n := range names {
		pids[n] = show(t, "cove-"+n+".service", "MainPID")
		if pids[n] == "0" || pids[n] == "" {
			t.Fatalf("%s is not running", n)
		}
	}
	return pids
}

// samePIDs fails t unless every workload still runs with the same MainPID.
func samePIDs(t *testing.T, before map[string]string) {
	t.Helper()
	for n, pid := range before {
		if now := show(t, "cove-"+n+".service", "MainPID"); now != pid {
			t.Errorf("%s: MainPID %s → %s after the helper was killed", n, pid, now)
		}
	}
}

// serving fails t unless the socket is listening and answers.
func serving(t *testing.T) {
	t.Helper()
	if st := show(t, "cove-api.socket", "ActiveState"); st != "active" {
		t.Errorf("cove-api.socket is %s", st)
	}
	if r := viaAPI(t, "ps"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "NAME") {
		t.Errorf("cove --host ps: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// applyDeclared applies specs for workloads that log "started NAME" and
// sleep, removing them when the test ends.
func applyDeclared(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	pruneAll(t)
	var paths []string
	for _, n := range names {
		paths = append(paths, declared(t, filepath.Join(workDir, dir), n, ""))
	}
	mustCove(t, append([]string{"apply"}, paths...)...)
	return paths
}

// background is a command running inside whose output lines arrive on a
// channel.
type background struct {
	lines  chan string
	done   chan int // exit code
	cancel context.CancelFunc
}

// startInside starts name inside and streams its stdout.
func startInside(t *testing.T, name string, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := sb.Command(ctx, name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &background{lines: make(chan string, 100), done: make(chan int, 1), cancel: cancel}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		cmd.Wait()
		b.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(cancel)
	return b
}

// waitLine waits for a line containing s.
func (b *background) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l := <-b.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q", s)
		}
	}
}

// exit waits for the command to end and returns its exit code.
func (b *background) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-b.done:
		return code
	case <-time.After(30 * time.Second):
		b.cancel()
		t.Fatal("command did not end")
		return -1
	}
}

// TestAPISocketActivation: the first request starts the helper, it exits
// after the idle period, and the next request starts it again.
func TestAPISocketActivation(t *testing.T) {
	needAPI(t)
	waitHelperGone(t)
	r := viaAPI(t, "ps")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "NAME") {
		t.Fatalf("first request: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	first := show(t, apiSvc, "MainPID")
	if st := show(t, apiSvc, "ActiveState"); st != "active" || first == "0" {
		t.Fatalf("after the first request the helper is %s (MainPID %s)", st, first)
	}
	waitHelperGone(t)
	if res := show(t, apiSvc, "Result"); res != "success" {
		t.Errorf("idle exit: Result=%s, want success", res)
	}
	if r := viaAPI(t, "ps"); r.Code != 0 {
		t.Fatalf("request after the idle exit: exit %d: %s", r.Code, r.Stderr)
	}
	if second := show(t, apiSvc, "MainPID"); second == first || second == "0" {
		t.Errorf("no new helper after the idle exit: MainPID %s, before %s", second, first)
	}
	if cg := show(t, apiSvc, "ControlGroup"); !strings.HasSuffix(cg, "/system.slice/cove-api.service") {
		t.Errorf("helper's cgroup %q: want its own, in system.slice", cg)
	}
}

// TestAPIKillDuringLogsAndJob: SIGKILL of the helper while it streams a
// followed log, and while it waits for a stop job, leaves every workload
// running with the same MainPID (the stop job itself completes in
// systemd), the socket serving, and the clients with an error.
func TestAPIKillDuringLogsAndJob(t *testing.T) {
	needAPI(t)
	applyDeclared(t, "api-kill", "keep1", "keep2")
	slow := containerSpec(t, filepath.Join(workDir, "api-kill"), "slow", rootfs, `["/bin/sleep", "1000"]`, "[service]\nstop_timeout = \"4s\"\n")
	mustCove(t, "apply", slow)
	pids := mainPIDs(t, "keep1", "keep2")

	logs := startInside(t, coveBin, "--host", apiHost, "logs", "-f", "keep1")
	logs.waitLine(t, "started keep1")
	followers := journalChildren(t, show(t, apiSvc, "MainPID"))
	if len(followers) != 1 {
		t.Errorf("the helper streams with %d journalctl children, want 1", len(followers))
	}
	killHelper(t)
	if code := logs.exit(t); code == 0 {
		t.Errorf("logs -f exited 0 after the helper was killed")
	}
	eventually(t, 5*time.Second, "the helper's journalctl to die with it", func() bool {
		return !anyRunning(t, followers)
	})
	samePIDs(t, pids)
	serving(t)

	stop := startInside(t, coveBin, "--host", apiHost, "stop", "slow")
	eventually(t, 10*time.Second, "slow to be stopping", func() bool {
		return show(t, "cove-slow.service", "ActiveState") == "deactivating"
	})
	killHelper(t)
	if code := stop.exit(t); code == 0 {
		t.Errorf("stop exited 0 although the helper was killed during it")
	}
	samePIDs(t, pids)
	serving(t)
	eventually(t, 15*time.Second, "systemd to finish stopping slow", func() bool {
		st := show(t, "cove-slow.service", "ActiveState")
		return st == "inactive" || st == "failed"
	})
	r := inside(t, "journalctl", "-u", apiSvc, "--no-pager", "-o", "cat")
	if !strings.Contains(r.Stdout, "allow uid=0") || !strings.Contains(r.Stdout, "POST /v1/workloads/slow/stop") {
		t.Errorf("the stop is not in the helper's journal:\n%s", harness.Tail(r.Stdout, 20))
	}
}

// journalChildren returns the journalctl processes that process pid
// forked (any of its threads' children), each PID with its start time.
func journalChildren(t *testing.T, pid string) map[string]string {
	t.Helper()
	r := inside(t, "sh", "-c", `for c in $(cat /proc/`+pid+`/task/*/children); do
	[ "$(cat /proc/$c/comm)" = journalctl ] && echo "$c $(cut -d' ' -f22 /proc/$c/stat)"
done; true`)
	procs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if pid, start, ok := strings.Cut(l, " "); ok {
			procs[pid] = start
		}
	}
	return procs
}

// anyRunning reports whether any of procs (PID → start time) still runs:
// a zombie, or a new process with the same PID, does not count.
func anyRunning(t *testing.T, procs map[string]string) bool {
	t.Helper()
	for pid, start := range procs {
		stat := inside(t, "cat", "/proc/"+pid+"/stat").Stdout
		f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
		if len(f) > 19 && f[0] != "Z" && f[19] == start {
			return true
		}
	}
	return false
}

// TestAPIAuthorisation: members of group cove read, start, stop and
// restart; apply, rm and kill need root; anyone else is refused 403 even
// when the socket's mode lets them connect. Decisions on mutating calls
// are in the journal with the caller's uid.
func TestAPIAuthorisation(t *testing.T) {
	needAPI(t)
	paths := applyDeclared(t, "api-auth", "authweb")
	uid := strings.TrimSpace(inside(t, "id", "-u", memberUser).Stdout)

	for _, args := range [][]string{{"ps"}, {"status", "authweb"}, {"stop", "authweb"}, {"start", "authweb"}, {"restart", "authweb"}} {
		if r := asUser(t, memberUser, args...); r.Code != 0 {
			t.Errorf("member: cove %v: exit %d: %s", args, r.Code, r.Stderr)
		}
	}
	if r := asUser(t, memberUser, "logs", "authweb"); !strings.Contains(r.Stdout, "started authweb") {
		t.Errorf("member: cove logs: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, args := range [][]string{{"apply", paths[0]}, {"rm", "authweb"}} {
		r := asUser(t, memberUser, args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "uid "+uid+" is not root") {
			t.Errorf("member: cove %v: exit %d: %s", args, r.Code, r.Stderr)
		}
	}
	for _, path := range []string{"/v1/workloads/authweb/kill", "/v1/apply"} {
		if code := curlAs(t, memberUser, "POST", path); code != "403" {
			t.Errorf("member: POST %s: HTTP %s, want 403", path, code)
		}
	}
	if st := show(t, "cove-authweb.service", "ActiveState"); st != "active" {
		t.Errorf("authweb is %s after the member's calls", st)
	}
	j := inside(t, "journalctl", "-u", apiSvc, "--no-pager", "-o", "cat").Stdout
	for _, want := range []string{"allow uid=" + uid + " ", "POST /v1/workloads/authweb/stop", "deny uid=" + uid + " ", "POST /v1/apply"} {
		if !strings.Contains(j, want) {
			t.Errorf("journal lacks %q", want)
		}
	}

	if r := asUser(t, otherUser, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") {
		t.Errorf("non-member through a 0660 socket: exit %d: %s", r.Code, r.Stderr)
	}
	inside(t, "chmod", "0666", apiSock)
	t.Cleanup(func() { inside(t, "chmod", "0660", apiSock) })
	if r := asUser(t, otherUser, "ps"); r.Code == 0 || !strings.Contains(r.Stderr, "not root or a member of group cove") {
		t.Errorf("non-member through a 0666 socket: exit %d: %s", r.Code, r.Stderr)
	}
	for _, path := range []string{"/v1/workloads", "/_ping", "/v1.41/containers/json"} {
		if code := curlAs(t, otherUser, "GET", path); code != "403" {
			t.Errorf("non-member: GET %s: HTTP %s, want 403", path, code)
		}
	}
}

// curlAs sends a request with curl inside as user and returns the status.
func curlAs(t *testing.T, user, method, path string) string {
	t.Helper()
	r := inside(t, "setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--",
		"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--unix-socket", apiSock, "http://cove"+path)
	return strings.TrimSpace(r.Stdout)
}

// rawRequest sends raw bytes to the API from the host (through the
// sandbox's root, as root) and returns the status and body.
func rawRequest(t *testing.T, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", fmt.Sprintf("/proc/%d/root%s", sb.PID(), apiSock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go io.WriteString(c, raw) // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer to %.60q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body)
}

// post is a raw POST request of path with a JSON body, for rawRequest.
func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: cove\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// TestAPIMalformedRequests: bad JSON, unknown fields, a wrong method, an
// unknown path, a bad name, a garbage request, huge headers and a 2 MiB
// body are all answered 4xx, and the helper keeps serving.
func TestAPIMalformedRequests(t *testing.T) {
	needAPI(t)
	big := `{"specs":[{"file":"big.toml","content":"` + strings.Repeat("#", 2<<20) + `"}]}`
	for _, tc := range []struct {
		what, raw string
		status    int
		body      string
	}{
		{"bad JSON", post("/v1/apply", "{"), 400, `"code":"bad_request"`},
		{"unknown field", post("/v1/diff", `{"spec":[]}`), 400, `unknown field`},
		{"wrong method", "PUT /v1/workloads HTTP/1.1\r\nHost: cove\r\n\r\n", 405, `"code":"method_not_allowed"`},
		{"unknown path", "GET /v1/nothing HTTP/1.1\r\nHost: cove\r\n\r\n", 404, `"code":"not_found"`},
		{"bad name", "POST /v1/workloads/..%2Fetc/start HTTP/1.1\r\nHost: cove\r\n\r\n", 400, `workload name`},
		{"bad query", "GET /v1/workloads/x/logs?lines=-1 HTTP/1.1\r\nHost: cove\r\n\r\n", 400, `lines=`},
		{"garbage", "HELLO\r\n\r\n", 400, ``},
		{"huge header", "GET /v1/workloads HTTP/1.1\r\nHost: cove\r\nX: " + strings.Repeat("a", 200<<10) + "\r\n\r\n", 431, ``},
		{"2 MiB body", post("/v1/apply", big), 413, `"code":"payload_too_large"`},
		{"bad spec file name", post("/v1/diff", `{"specs":[{"file":"..","content":""}]}`), 400, `want a file name`},
		{"Docker path not implemented", "POST /v1.41/build HTTP/1.1\r\nHost: cove\r\n\r\n", 501, `{"message":"cove does not implement POST /build"}`},
	} {
		status, body := rawRequest(t, tc.raw)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %.200s, want %d with %q", tc.what, status, body, tc.status, tc.body)
		}
	}
	serving(t)
}

// TestAPISameOutput: the CLI prints the same through the API as when it
// talks to systemd itself, for reads, logs, diff, errors and bad specs.
func TestAPISameOutput(t *testing.T) {
	needAPI(t)
	paths := applyDeclared(t, "api-same", "same1")
	bad := declared(t, filepath.Join(workDir, "api-same-bad"), "same2", "[resources]\nmemory = \"lots\"\n")
	volatile := regexp.MustCompile(`"(memory_bytes|tasks)": \d+,?\n`)
	full := inside(t, "curl", "-s", "--unix-socket", apiSock, "http://cove/v1/workloads").Stdout
	states := inside(t, "curl", "-s", "--unix-socket", apiSock, "http://cove/v1/workloads?counters=false").Stdout
	if !strings.Contains(full, `"memory_bytes":`) || !strings.Contains(states, `"name":"same1"`) || strings.Contains(states, `"memory_bytes":`) {
		t.Errorf("GET /v1/workloads has the counters and ?counters=false has none, want:\n%.300s\n%.300s", full, states)
	}
	for _, args := range [][]string{
		{"ps"}, {"ps", "--json"}, {"status", "same1"}, {"logs", "same1"}, {"logs", "-n", "1", "same1"},
		{"logs", "-t", "same1"}, {"logs", "--timestamps", "--since", "1h", "--until", "2100-01-01T00:00:00Z", "same1"},
		{"logs", "--until", "2000-01-01T00:00:00Z", "same1"}, {"logs", "--since", "yesterday", "same1"},
		{"diff", paths[0]}, {"diff", "--prune", paths[0]}, {"diff"}, {"status", "nosuch"}, {"diff", bad},
		{"apply", bad}, {"stop", "nosuch"}, {"apply", filepath.Join(workDir, "no-such-dir")},
	} {
		local, remote := cove(t, args...), viaAPI(t, args...)
		norm := func(s string) string {
			s = volatile.ReplaceAllString(s, "")
			return regexp.MustCompile(`Uptime:.*|Memory:.*|Tasks:.*`).ReplaceAllString(s, "")
		}
		if norm(local.Stdout) != norm(remote.Stdout) || local.Stderr != remote.Stderr || local.Code != remote.Code {
			t.Errorf("cove %v differs through the API:\nlocal  (exit %d): %s%s\nremote (exit %d): %s%s",
				args, local.Code, local.Stdout, local.Stderr, remote.Code, remote.Stdout, remote.Stderr)
		}
	}
	if r := viaAPI(t, "run", "--rootfs", rootfs, "--", "/bin/true"); r.Code != 2 || !strings.Contains(r.Stderr, "does not work through the API") {
		t.Errorf("cove --host run: exit %d: %s", r.Code, r.Stderr)
	}
	out := viaAPI(t, "apply", paths[0], bad)
	if out.Code != 2 || !strings.Contains(out.Stderr, bad+":9:1: resources.memory") {
		t.Errorf("apply of a bad spec through the API: exit %d: %s", out.Code, out.Stderr)
	}
}

// TestDockerCLI: the docker CLI lists and inspects cove workloads, streams
// their logs (with timestamps, since and until), starts, stops and signals
// them, and gets a clear 501 for the rest.
func TestDockerCLI(t *testing.T) {
	needAPI(t)
	docker := dockerCLI(t)
	applyDeclared(t, "api-docker", "dockweb")
	if r := docker("version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(r.Stdout) != "1.41" {
		t.Errorf("docker version: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	r := docker("ps")
	if r.Code != 0 || !regexp.MustCompile(`(?m)^[0-9a-f]{12} .*Up .*dockweb$`).MatchString(r.Stdout) {
		t.Errorf("docker ps: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = docker("inspect", "dockweb")
	var got []struct {
		Name  string
		State struct {
			Running bool
			Pid     int
		}
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("docker inspect: exit %d, %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	pid, _ := strconv.Atoi(show(t, "cove-dockweb.service", "MainPID"))
	if g := got[0]; g.Name != "/dockweb" || !g.State.Running || g.State.Pid != pid || g.Config.Labels["cove.kind"] != "container" {
		t.Errorf("docker inspect: %+v (MainPID %d)", g, pid)
	}
	if r := docker("logs", "dockweb"); r.Code != 0 || r.Stdout != "started dockweb\n" {
		t.Errorf("docker logs: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	dockerLogTimes(t, docker)
	pythonSDKContainers(t, "dockweb", pid)
	logs := startInside(t, harness.DockerCLI(t, sb), "-H", apiHost, "logs", "-f", "dockweb")
	logs.waitLine(t, "started dockweb")
	logs.cancel()
	if r := docker("top", "dockweb"); r.Code != 0 || !strings.Contains(r.Stdout, "sleep 1000") {
		t.Errorf("docker top: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("stop", "dockweb"); r.Code != 0 || show(t, "cove-dockweb.service", "ActiveState") == "active" {
		t.Errorf("docker stop: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("ps", "-a", "--filter", "label=cove.kind=container"); !strings.Contains(r.Stdout, "Exited") {
		t.Errorf("docker ps -a after stop:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("start", "dockweb"); r.Code != 0 || show(t, "cove-dockweb.service", "ActiveState") != "active" {
		t.Errorf("docker start: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("search", "x"); r.Code == 0 || !strings.Contains(r.Stderr, "cove does not implement GET /images/search") {
		t.Errorf("docker search: exit %d: %s", r.Code, r.Stderr)
	}
	dockerKillSignals(t, docker)
}

// dockerLogTimes: docker logs --timestamps prints the journal's time of
// each line (RFC 3339, UTC, nine digits), and --since and --until select
// by it to the microsecond, both inclusive; -n 0 prints nothing.
func dockerLogTimes(t *testing.T, docker func(...string) result) {
	t.Helper()
	var entry struct {
		Realtime string `json:"__REALTIME_TIMESTAMP"`
		Message  string `json:"MESSAGE"`
	}
	j := inside(t, "journalctl", "-u", "cove-dockweb.service", "-o", "json", "--output-fields=MESSAGE", "--no-pager", "--grep", "^started dockweb$")
	if err := json.Unmarshal([]byte(j.Stdout), &entry); err != nil {
		t.Fatalf("journal entry of dockweb: %v\n%s", err, j.Stdout)
	}
	us, _ := strconv.ParseInt(entry.Realtime, 10, 64)
	at := time.UnixMicro(us).UTC()
	stamp := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000000Z07:00") }
	line := stamp(at) + " started dockweb\n"
	if r := docker("logs", "--timestamps", "dockweb"); r.Code != 0 || r.Stdout != line {
		t.Errorf("docker logs --timestamps: exit %d: %q, want %q %s", r.Code, r.Stdout, line, r.Stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", stamp(at)}, "started dockweb\n"},
		{[]string{"--since", stamp(at.Add(time.Microsecond))}, ""},
		{[]string{"--since", stamp(at.Add(time.Nanosecond))}, ""},
		{[]string{"--until", stamp(at)}, "started dockweb\n"},
		{[]string{"--until", stamp(at.Add(-time.Nanosecond))}, ""},
		{[]string{"--since", "10m", "--until", stamp(at.Add(time.Hour))}, "started dockweb\n"},
		{[]string{"-n", "0"}, ""},
	} {
		if r := docker(append(append([]string{"logs"}, tc.args...), "dockweb")...); r.Code != 0 || r.Stdout != tc.want {
			t.Errorf("docker logs %q: exit %d: %q, want %q %s", tc.args, r.Code, r.Stdout, tc.want, r.Stderr)
		}
	}
}

// dockerKillSignals: docker kill --signal sends any signal to the main
// process, which systemd then sees handle it (HUP: still running, same
// PID) or exit from it (TERM: the unit fails with the payload's status);
// an unknown signal is refused with Docker's message.
func dockerKillSignals(t *testing.T, docker func(...string) result) {
	t.Helper()
	mustCove(t, "apply", containerSpec(t, filepath.Join(workDir, "api-docker"), "docksig", rootfs,
		shCommand("trap 'echo got HUP' HUP; trap 'echo got TERM; exit 7' TERM; echo started docksig; while true; do sleep 1; done"), ""))
	unit := "cove-docksig.service"
	pid := mainPIDs(t, "docksig")["docksig"]
	logged := func(s string) func() bool {
		return func() bool { return strings.Contains(cove(t, "logs", "docksig").Stdout, s) }
	}
	if r := docker("kill", "--signal", "FOO", "docksig"); r.Code == 0 || !strings.Contains(r.Stderr, "Invalid signal: FOO") {
		t.Errorf("docker kill --signal FOO: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("kill", "--signal", "HUP", "docksig"); r.Code != 0 {
		t.Errorf("docker kill --signal HUP: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 10*time.Second, "docksig to log got HUP", logged("got HUP"))
	if now, st := show(t, unit, "MainPID"), show(t, unit, "ActiveState"); now != pid || st != "active" {
		t.Errorf("after SIGHUP: %s with MainPID %s, want active with %s", st, now, pid)
	}
	if r := docker("kill", "--signal", "SIGTERM", "docksig"); r.Code != 0 {
		t.Errorf("docker kill --signal SIGTERM: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 10*time.Second, "docksig to exit on SIGTERM", func() bool { return show(t, unit, "ActiveState") == "failed" })
	if !logged("got TERM")() || show(t, unit, "MainPID") != "0" || show(t, unit, "ExecMainStatus") != "7" || show(t, unit, "Result") != "exit-code" {
		t.Errorf("after SIGTERM: MainPID %s, ExecMainStatus %s, Result %s, log:\n%s", show(t, unit, "MainPID"),
			show(t, unit, "ExecMainStatus"), show(t, unit, "Result"), cove(t, "logs", "docksig").Stdout)
	}
	if r := docker("kill", "--signal", "TERM", "docksig"); r.Code == 0 || !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("docker kill of a stopped container: exit %d: %s", r.Code, r.Stderr)
	}
}

// dockerCLI returns a runner of the real docker CLI inside the sandbox,
// talking to cove's API.
func dockerCLI(t *testing.T) func(args ...string) result {
	bin := harness.DockerCLI(t, sb)
	return func(args ...string) result {
		return inside(t, bin, append([]string{"-H", apiHost}, args...)...)
	}
}

// dockerWithImage is dockerCLI after docker pull of the test image, and
// the image's reference.
func dockerWithImage(t *testing.T) (docker func(args ...string) result, ref string) {
	docker, ref, _ = dockerWithRegistry(t)
	return docker, ref
}

// dockerWithRegistry is dockerWithImage with the registry the image is
// in (the one the sandbox's registries.toml allows).
func dockerWithRegistry(t *testing.T) (docker func(args ...string) result, ref string, reg *registry.Registry) {
	docker = dockerCLI(t)
	ref, reg = testImage(t)
	if r := docker("pull", ref); r.Code != 0 {
		t.Fatalf("docker pull: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	return docker, ref, reg
}

// pythonSDKContainers checks running workload name through Debian's
// python3-docker, as Ansible's docker modules and testcontainers use
// the API: containers.list() has it, get() shows it running with its
// main PID, logs() has its output.
func pythonSDKContainers(t *testing.T, name string, pid int) {
	t.Helper()
	py := fmt.Sprintf(`import docker, json
c = docker.DockerClient(base_url=%q, version="1.41")
names = [x.name for x in c.containers.list()]
ct = c.containers.get(%q)
print(json.dumps({"listed": %q in names, "status": ct.status, "pid": ct.attrs["State"]["Pid"], "logs": ct.logs().decode()}))
`, apiHost, name, name)
	r := inside(t, "/usr/bin/python3", "-c", py)
	var got struct {
		Listed bool
		Status string
		Pid    int
		Logs   string
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("python3-docker containers: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if !got.Listed || got.Status != "running" || got.Pid != pid || got.Logs != "started "+name+"\n" {
		t.Errorf("python3-docker containers.list/get/logs of %s: %+v, want listed, running, PID %d and its output", name, got, pid)
	}
}
