// Command api measures cove's socket-activated API helper inside one
// private systemd booted by tests/sandbox: the first response after the
// helper has exited (cold), request latency with the helper running
// (warm), throughput with 50 concurrent clients, and `docker ps` against
// cove next to `docker ps` against `podman system service`, cold and
// warm, interleaved round-robin.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/api -n 30
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// Where the two API services listen inside the sandbox.
const (
	coveSock   = "/run/cove/api.sock"
	podmanSock = "/run/bench-podman/podman.sock"
	podmanRun  = "/run/bench-podman/runroot"
	podmanImg  = "localhost/bb"
)

// options are the command-line flags.
type options struct {
	n         int           // rounds of each interleaved command measurement
	warm      int           // sequential warm requests per endpoint
	clients   int           // concurrent clients for throughput
	duration  time.Duration // of each throughput run
	workloads int           // running containers on each side
	podman    bool
	verbose   bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 20, "rounds of the cold and docker ps measurements")
	flag.IntVar(&o.warm, "warm", 2000, "sequential warm requests per endpoint")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients in the throughput runs")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each throughput run")
	flag.IntVar(&o.workloads, "workloads", 10, "running containers for cove (and podman) to list")
	flag.BoolVar(&o.podman, "podman", true, "compare docker ps against podman system service, if podman is installed")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.Parse()
	if o.n < 1 || o.warm < 1 || o.clients < 1 || o.workloads < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report collects the results.
type report struct {
	rows    []row
	notes   []string
	machine string
}

// row is one line of the results table.
type row struct {
	what, how string
	samples   []float64 // milliseconds
	extra     string    // e.g. throughput
}

// run sets everything up, measures and prints the report.
func run(o options) error {
	box, err := benchbox.Setup(benchbox.Options{Declared: true, BootTimeout: 2 * time.Minute, Verbose: o.verbose})
	if err != nil {
		return err
	}
	defer box.Close()
	rep := &report{machine: benchbox.MachineLine(benchbox.Machine(box.Ctx, box.SB))}
	benchbox.Progress("installing cove-api.socket and starting containers")
	if err := setupCove(box, o.workloads); err != nil {
		return err
	}
	client := newClient(fmt.Sprintf("/proc/%d/root%s", box.SB.PID(), coveSock))

	benchbox.Progress("cold first responses")
	if err := cold(box, client, o.n, rep); err != nil {
		return err
	}
	benchbox.Progress("warm requests")
	if err := warm(client, o.warm, o.workloads, rep); err != nil {
		return err
	}
	benchbox.Progress("throughput")
	for _, path := range []string{"/v1/workloads", "/_ping"} {
		rep.rows = append(rep.rows, throughput(client.sock, path, o.clients, o.duration))
	}
	benchbox.Progress("docker ps")
	if err := dockerPS(box, o, rep); err != nil {
		return err
	}
	printReport(os.Stdout, rep, o)
	return nil
}

// setupCove installs the packaged API units (ExecStart at the fresh
// cove), group cove, and starts o.workloads containers that sleep.
func setupCove(box *benchbox.Box, workloads int) error {
	pkg := filepath.Join(box.Repo, "packaging")
	script := fmt.Sprintf(`set -e
systemd-sysusers %[1]s/sysusers.d/cove.conf
cp %[1]s/cove-api.socket /etc/systemd/system/
sed -e 's|/usr/bin/cove|%[2]s|' %[1]s/cove-api.service > /etc/systemd/system/cove-api.service
systemctl daemon-reload
systemctl start cove-api.socket
for i in $(seq %[3]d); do %[2]s run -d --name bench$i --rootfs %[4]s --network none -- /bin/sleep 100000 >/dev/null; done
`, pkg, box.Cove, workloads, box.Rootfs)
	_, err := benchbox.Inside(box.Ctx, box.SB, 2*time.Minute, nil, "sh", "-c", script)
	return err
}

// triggerGap paces cold starts: a socket unit allows 20 activations in
// 2 s (TriggerLimitBurst= and TriggerLimitIntervalSec=, Accept=no) and
// then fails with trigger-limit-hit. Real clients never come near it, as
// the helper stays up for its idle period after each activation.
const triggerGap = 150 * time.Millisecond

// lastStop is when stopService last stopped each unit.
var lastStop = map[string]time.Time{}

// stopService stops a service inside, waits until it has stopped, and
// paces: it returns no sooner than triggerGap after its last call for the
// unit.
func stopService(box *benchbox.Box, unit string) error {
	time.Sleep(time.Until(lastStop[unit].Add(triggerGap)))
	_, err := benchbox.Inside(box.Ctx, box.SB, benchbox.CmdTimeout, nil, "systemctl", "stop", unit)
	lastStop[unit] = time.Now()
	return err
}

// apiClient sends requests to the cove API from the host, through the
// sandbox's root.
type apiClient struct {
	sock string
	hc   *http.Client
}

// newClient returns a client with keep-alive connections to sock.
func newClient(sock string) *apiClient {
	return &apiClient{sock: sock, hc: &http.Client{Transport: transport(sock)}}
}

// transport dials sock for every connection.
func transport(sock string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 100,
	}
}

// get sends GET path and reads the whole answer; it returns the time
// taken in milliseconds.
func (c *apiClient) get(path string) (float64, error) {
	start := time.Now()
	resp, err := c.hc.Get("http://cove" + path)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return benchbox.Millis(time.Since(start)), err
}

// cold measures the first response after the helper has stopped: a new
// connection to the socket, systemd starting the helper, and the answer.
// GET /_ping (no systemd call) and GET /v1/workloads (connects to the
// system bus and lists) alternate.
func cold(box *benchbox.Box, c *apiClient, n int, rep *report) error {
	paths := []string{"/_ping", "/v1/workloads"}
	samples := make([][]float64, len(paths))
	for round := 0; round < n+2; round++ {
		for i, p := range paths {
			if err := stopService(box, "cove-api.service"); err != nil {
				return err
			}
			c.hc.CloseIdleConnections()
			d, err := c.get(p)
			if err != nil {
				log, _ := benchbox.Inside(box.Ctx, box.SB, benchbox.CmdTimeout, nil, "systemctl", "status", "cove-api.socket", "cove-api.service")
				return fmt.Errorf("cold GET %s: %w\n%s", p, err, log)
			}
			if round >= 2 { // two warm-up rounds
				samples[i] = append(samples[i], d)
			}
		}
	}
	for i, p := range paths {
		rep.rows = append(rep.rows, row{what: "cold first response", how: "GET " + p + " (new connection; helper stopped before)", samples: samples[i]})
	}
	return nil
}

// warm measures sequential requests on one keep-alive connection with the
// helper running: the API's floor (/_ping), one workload's status, and
// the lists.
func warm(c *apiClient, n, workloads int, rep *report) error {
	paths := []string{"/_ping", "/v1/workloads", "/v1.41/containers/json"}
	if workloads > 0 {
		paths = append(paths[:1], append([]string{"/v1/workloads/bench1"}, paths[1:]...)...)
	}
	for _, p := range paths {
		var s []float64
		for i := 0; i < n+50; i++ {
			d, err := c.get(p)
			if err != nil {
				return fmt.Errorf("warm GET %s: %w", p, err)
			}
			if i >= 50 {
				s = append(s, d)
			}
		}
		rep.rows = append(rep.rows, row{what: "warm request", how: "GET " + p + " (keep-alive, sequential)", samples: s})
	}
	return nil
}

// throughput runs clients concurrent clients, each on its own keep-alive
// connection, sending GET path for d.
func throughput(sock, path string, clients int, d time.Duration) row {
	var mu sync.Mutex
	var all []float64
	var failed int
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(sock)
			var mine []float64
			bad := 0
			for time.Now().Before(deadline) {
				ms, err := c.get(path)
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, ms)
			}
			c.hc.CloseIdleConnections()
			mu.Lock()
			all = append(all, mine...)
			failed += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	extra := fmt.Sprintf("%.0f requests/s", float64(len(all))/d.Seconds())
	if failed > 0 {
		extra += fmt.Sprintf(", %d failed", failed)
	}
	return row{what: fmt.Sprintf("throughput, %d clients", clients), how: "GET " + path + fmt.Sprintf(" for %s", d), samples: all, extra: extra}
}

// podmanConf is podman's CONTAINERS_CONF: no default sysctl, which crun
// cannot write in the sandbox (see bench/run).
const podmanConf = `[containers]
default_sysctls = []
`

// setupPodman imports the rootfs, starts o.workloads podman containers and
// installs bench-podman.socket / .service, socket-activated like cove's.
func setupPodman(box *benchbox.Box, workloads int) error {
	conf := filepath.Join(box.Work, "containers.conf")
	if err := os.WriteFile(conf, []byte(podmanConf), 0o644); err != nil {
		return err
	}
	store := fmt.Sprintf("podman --root %s --runroot %s --cgroup-manager systemd --runtime crun", filepath.Join(box.Work, "podman"), podmanRun)
	units := fmt.Sprintf(`[Socket]
ListenStream=%[1]s
SocketMode=0660
[Install]
WantedBy=sockets.target
---
[Unit]
Requires=bench-podman.socket
After=bench-podman.socket
StartLimitIntervalSec=0
[Service]
Type=exec
Environment=CONTAINERS_CONF=%[2]s
ExecStart=/usr/bin/%[3]s system service --time=5
KillMode=process
Delegate=true
`, podmanSock, conf, store)
	sock, svc, _ := strings.Cut(units, "---\n")
	script := fmt.Sprintf(`set -e
export CONTAINERS_CONF=%[1]s
tar -C %[2]s -c . | %[3]s import - %[4]s >/dev/null
for i in $(seq %[5]d); do %[3]s run -d --network=none --name bench$i %[4]s /bin/sleep 100000 >/dev/null; done
cat > /etc/systemd/system/bench-podman.socket <<'EOF'
%[6]sEOF
cat > /etc/systemd/system/bench-podman.service <<'EOF'
%[7]sEOF
systemctl daemon-reload
systemctl start bench-podman.socket
`, conf, box.Rootfs, store, podmanImg, workloads, sock, svc)
	_, err := benchbox.Inside(box.Ctx, box.SB, 5*time.Minute, nil, "sh", "-c", script)
	return err
}

// dockerPS times `docker -H … ps` against cove and against podman, warm
// (services running) and cold (services stopped before each call),
// interleaved; and `cove ps` through the API next to `cove ps` talking
// to systemd itself.
func dockerPS(box *benchbox.Box, o options, rep *report) error {
	docker, err := exec.LookPath("docker")
	if err != nil {
		rep.notes = append(rep.notes, "docker CLI not installed: docker ps not measured")
		return nil
	}
	type cmd struct {
		what, how, stop string
		argv            []string
		samples         []float64
	}
	cmds := []*cmd{
		{what: "docker ps, warm", how: "cove", argv: []string{docker, "-H", "unix://" + coveSock, "ps"}},
		{what: "docker ps, cold", how: "cove", stop: "cove-api.service", argv: []string{docker, "-H", "unix://" + coveSock, "ps"}},
		{what: "cove ps", how: "through the API (--host)", argv: []string{box.Cove, "--host", "unix://" + coveSock, "ps"}},
		{what: "cove ps", how: "to systemd directly (root)", argv: []string{box.Cove, "ps"}},
	}
	switch _, err := exec.LookPath("podman"); {
	case !o.podman:
		rep.notes = append(rep.notes, "podman left out (-podman=false)")
	case err != nil:
		rep.notes = append(rep.notes, "podman not installed: apt-get install podman crun")
	default:
		benchbox.Progress("setting up podman")
		if err := setupPodman(box, o.workloads); err != nil {
			return fmt.Errorf("set up podman: %w", err)
		}
		argv := []string{docker, "-H", "unix://" + podmanSock, "ps"}
		cmds = append(cmds[:2], append([]*cmd{
			{what: "docker ps, warm", how: "podman system service", argv: argv},
			{what: "docker ps, cold", how: "podman system service", stop: "bench-podman.service", argv: argv},
		}, cmds[2:]...)...)
	}
	for round := 0; round < o.n+2; round++ {
		for _, c := range cmds {
			if c.stop != "" {
				if err := stopService(box, c.stop); err != nil {
					return err
				}
			}
			d, err := benchbox.TimeOnce(box.Ctx, box.SB, benchbox.CmdTimeout, nil, c.argv)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", c.what, c.how, err)
			}
			if round >= 2 {
				c.samples = append(c.samples, d)
			}
		}
	}
	floor, err := nsenterFloor(box, o.n)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		rep.rows = append(rep.rows, row{what: c.what, how: c.how + ": `" + display(box, c.argv) + "`", samples: c.samples})
	}
	rep.rows = append(rep.rows, row{what: "nsenter floor", how: "`/bin/true`", samples: floor})
	return nil
}

// nsenterFloor times /bin/true through the sandbox wrapper.
func nsenterFloor(box *benchbox.Box, n int) ([]float64, error) {
	var s []float64
	for i := 0; i < n; i++ {
		d, err := benchbox.TimeOnce(box.Ctx, box.SB, benchbox.CmdTimeout, nil, []string{"/bin/true"})
		if err != nil {
			return nil, err
		}
		s = append(s, d)
	}
	return s, nil
}

// display shortens argv for the table.
func display(box *benchbox.Box, argv []string) string {
	s := strings.Join(argv, " ")
	s = strings.ReplaceAll(s, box.Cove, "cove")
	return strings.ReplaceAll(s, filepath.Dir(argv[0])+"/docker", "docker")
}

// percentile is the nearest-rank percentile p (0..100) of sorted s.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// printReport writes the results as a markdown table.
func printReport(w io.Writer, rep *report, o options) {
	fmt.Fprintf(w, "%s UTC; %d running containers on each side; cold and docker ps: %d rounds after 2 warm-up rounds, interleaved; warm: %d sequential requests after 50\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), o.workloads, o.n, o.warm)
	fmt.Fprintln(w, "| measurement | how | n | p50 | p90 | p99 | max | |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rep.rows {
		s := append([]float64(nil), r.samples...)
		sort.Float64s(s)
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", r.what, r.how, len(s),
			ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 99)), ms(percentile(s, 100)), r.extra)
	}
	fmt.Fprintln(w)
	for _, n := range rep.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintf(w, "- machine: %s.\n", rep.machine)
	fmt.Fprintf(w, "- command: `go run ./bench/api %s`\n", strings.Join(os.Args[1:], " "))
}

// ms formats milliseconds.
func ms(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}
