package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// measure runs the measurements in turn and adds their rows to rep.
func measure(box *benchbox.Box, o options, rep *report) error {
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
	return dockerPS(box, o, rep)
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

// cold measures the first response after the helper has stopped: a new
// connection to the socket, systemd starting the helper, and the answer.
// GET /_ping (no systemd call) and GET /v1/workloads (connects to the
// system bus and lists) alternate.
func cold(box *benchbox.Box, c *apiClient, n int, rep *report) error {
	paths := []string{"/_ping", "/v1/workloads"}
	samples := make([][]float64, len(paths))
	err := benchbox.Rounds(2, n, false, func(_ int, measure bool) error {
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
			if measure {
				samples[i] = append(samples[i], d)
			}
		}
		return nil
	})
	if err != nil {
		return err
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
		err := benchbox.Rounds(50, n, false, func(_ int, measure bool) error {
			d, err := c.get(p)
			if err != nil {
				return fmt.Errorf("warm GET %s: %w", p, err)
			}
			if measure {
				s = append(s, d)
			}
			return nil
		})
		if err != nil {
			return err
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
			mine, bad := hammer(sock, path, deadline)
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

// hammer is one throughput client: it sends GET path on one keep-alive
// connection until deadline and returns the times of the requests that
// succeeded and how many failed.
func hammer(sock, path string, deadline time.Time) (ok []float64, failed int) {
	c := newClient(sock)
	defer c.hc.CloseIdleConnections()
	for time.Now().Before(deadline) {
		ms, err := c.get(path)
		if err != nil {
			failed++
			continue
		}
		ok = append(ok, ms)
	}
	return ok, failed
}

// dockerPS times `docker -H … ps` against cove and against podman, warm
// (services running) and cold (services stopped before each call),
// interleaved; and `cove ps` through the API next to `cove ps` talking
// to systemd itself (see psCommands); then the nsenter floor.
func dockerPS(box *benchbox.Box, o options, rep *report) error {
	cmds, err := psCommands(box, o, rep)
	if err != nil || cmds == nil {
		return err
	}
	err = benchbox.Rounds(2, o.n, false, func(_ int, measure bool) error {
		return timePS(box, cmds, measure)
	})
	if err != nil {
		return err
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

// timePS runs each command once, stopping its service first if it has
// one, and keeps the times if measuring.
func timePS(box *benchbox.Box, cmds []*psCmd, measure bool) error {
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
		if measure {
			c.samples = append(c.samples, d)
		}
	}
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
