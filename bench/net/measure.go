package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// The tests, in the order a round runs them.
const (
	testStart       = "start"        // run --rm … /bin/true, timed from outside
	testRR          = "rr"           // request/response latency
	testBulk        = "bulk"         // one-stream throughput
	testConn        = "conn"         // published port, client in the sandbox's namespace
	testConnOutside = "conn-outside" // published port, client in the outside namespace
)

// The start test's two diagnostic series, and the published port's
// through cove's [::1] proxy.
const (
	releaseSeries = "cove network-release alone"
	floorSeries   = "nsenter floor"
	proxySeries   = "cove [::1] proxy"
)

// tests lists the tests in the order a round runs them.
var tests = []string{testStart, testRR, testBulk, testConn, testConnOutside}

// Paths the traffic takes, as the report describes them.
const (
	pathCove    = "container → container on network cove (veth, bridge cove0, veth)"
	pathPodman  = "container → container on network podman (netavark: veth, bridge podman0, veth)"
	pathFloor   = "127.0.0.1 in an empty namespace (no container, no NAT, no firewall table)"
	pathLoop    = "127.0.0.1 inside the client container, the client started as above (no veth, no bridge)"
	pathPubCove = "the sandbox's namespace → " + benchbox.UplinkAddr + ":" + covePub + " → cove's DNAT → server container"
	pathPubPod  = "the sandbox's namespace → " + benchbox.UplinkAddr + ":" + podmanPub + " → netavark's DNAT → server container"
	pathProxy   = "the sandbox's namespace → [::1]:" + covePub + " → cove's socket-activated proxy (systemd-socket-proxyd) → server container"
	pathOutside = "the outside namespace (" + benchbox.OutsideAddr + ") → " + benchbox.UplinkAddr + ":PORT → DNAT → server container"
)

// seriesList collects the series in the order they are added.
type seriesList []*series

// add appends a series of test for system.
func (l *seriesList) add(test, system, path string, env []string, argv ...string) {
	*l = append(*l, &series{Test: test, System: system, Path: path, Env: env, Argv: argv})
}

// series lists every test's commands: cove, then podman (if it runs),
// then the loopback controls and the floor.
func (f *fixture) series(coveSrv, podmanSrv string) []*series {
	var l seriesList
	f.startSeries(&l)
	f.trafficSeries(&l, coveSrv, podmanSrv)
	f.connSeries(&l)
	return l
}

// startSeries adds the start test: run --rm with and without a network,
// and what a network adds after the payload (ExecStopPost= runs cove
// network-release; here for a workload that holds no lease) with the
// nsenter floor to subtract from it.
func (f *fixture) startSeries(l *seriesList) {
	R := f.box.Rootfs
	for _, net := range []string{"none", "cove"} {
		l.add(testStart, "cove --network "+net, "", nil, f.box.Cove, "run", "--rm", "--rootfs", R, "--network", net, "--", "/bin/true")
	}
	l.add(testStart, releaseSeries, "", nil, f.box.Cove, "network-release", "nb-nolease", "cove")
	l.add(testStart, floorSeries, "", nil, "/bin/true")
	if f.podman != nil {
		for _, net := range []string{"none", "podman"} {
			l.add(testStart, "podman --network "+net, "", f.podman.Env, f.podman.Argv("run", "--rm", "--network", net, "--rootfs", R, "/bin/true")...)
		}
	}
}

// trafficSeries adds the request/response and bulk tests: from each
// system's client container to its server container, on the client
// container's own loopback, and the floor.
func (f *fixture) trafficSeries(l *seriesList, coveSrv, podmanSrv string) {
	coveCli := []string{f.box.Cove, "exec", coveClient, "--", echoPath}
	floor := []string{"nsenter", "--net=" + floorNetNS, f.echo}
	var podCli []string
	if f.podman != nil {
		podCli = f.podman.Argv("exec", podmanClient, echoPath)
	}
	for _, t := range []struct {
		test string
		args []string
	}{
		{testRR, []string{testRR, "-n", strconv.Itoa(f.o.rr), "-size", strconv.Itoa(f.o.size)}},
		{testBulk, []string{testBulk, "-duration", f.o.bulk.String()}},
	} {
		l.add(t.test, "cove", pathCove, nil, client(coveCli, t.args, coveSrv+":"+serverPort)...)
		if podCli != nil {
			l.add(t.test, "podman", pathPodman, f.podman.Env, client(podCli, t.args, podmanSrv+":"+serverPort)...)
		}
		l.add(t.test, "cove container loopback", pathLoop, nil, client(coveCli, t.args, clientLoop)...)
		if podCli != nil {
			l.add(t.test, "podman container loopback", pathLoop, f.podman.Env, client(podCli, t.args, clientLoop)...)
		}
		l.add(t.test, "loopback floor", pathFloor, nil, client(floor, t.args, floorAddr)...)
	}
}

// connSeries adds the published-port tests, from the sandbox's own
// namespace and from the outside one, and the floor (no port, no NAT).
func (f *fixture) connSeries(l *seriesList) {
	conn := []string{"conn", "-n", strconv.Itoa(f.o.conns)}
	here := []string{f.echo}
	outside := []string{"nsenter", "--net=" + benchbox.OutsideNetNS, f.echo}
	pub := func(port string) string { return benchbox.UplinkAddr + ":" + port }
	l.add(testConn, "cove", pathPubCove, nil, client(here, conn, pub(covePub))...)
	l.add(testConn, proxySeries, pathProxy, nil, client(here, conn, "[::1]:"+covePub)...)
	l.add(testConnOutside, "cove", strings.Replace(pathOutside, "PORT", covePub, 1), nil, client(outside, conn, pub(covePub))...)
	if f.podman != nil {
		l.add(testConn, "podman", pathPubPod, nil, client(here, conn, pub(podmanPub))...)
		l.add(testConnOutside, "podman", strings.Replace(pathOutside, "PORT", podmanPub, 1), nil, client(outside, conn, pub(podmanPub))...)
	}
	l.add(testConn, "loopback floor", pathFloor, nil, client([]string{"nsenter", "--net=" + floorNetNS, f.echo}, conn, floorAddr)...)
}

// client is the command line prefix (the helper, possibly behind exec or
// nsenter), the helper's arguments and -addr addr.
func client(prefix, args []string, addr string) []string {
	argv := append(append([]string(nil), prefix...), args...)
	return append(argv, "-addr", addr)
}

// measure runs the rounds: in each, every test's commands in turn,
// starting one further along every round, so that no system always
// follows the same one; then it summarises and checks the closed world.
func (f *fixture) measure(rep *report) error {
	err := benchbox.Rounds(rep.Warmup, rep.Rounds, true, func(round int, measure bool) error {
		for _, test := range tests {
			ss := rep.of(test)
			for i := range ss {
				s := ss[(i+round)%len(ss)]
				r, err := f.runOnce(s)
				if f.box.Ctx.Err() != nil {
					return errors.New("interrupted")
				}
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round+1, test, s.System, err)
				}
				if measure {
					s.Results = append(s.Results, r)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range rep.Series {
		s.summarize()
	}
	ratios(rep)
	return f.checkWorld(rep, "after the rounds")
}

// runOnce runs s's command once. A start is timed from outside (the
// whole nsenter invocation, in ms); a client reports its own JSON.
func (f *fixture) runOnce(s *series) (result, error) {
	if s.Test == testStart {
		ms, err := benchbox.TimeOnce(f.box.Ctx, f.box.SB, benchbox.CmdTimeout, s.Env, s.Argv)
		return result{"ms": ms}, err
	}
	out, err := f.inside(s.Env, s.Argv...)
	if err != nil {
		return nil, err
	}
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("the client's output %q: %w", out, err)
	}
	return r, nil
}

// summarize sets the median, minimum and maximum over the rounds of each
// of s's result fields.
func (s *series) summarize() {
	s.Median, s.Min, s.Max = result{}, result{}, result{}
	for k := range s.Results[0] {
		var vs []float64
		for _, r := range s.Results {
			vs = append(vs, r[k])
		}
		st := benchbox.Summarize(vs)
		s.Median[k], s.Min[k] = st.Median, st.Min
		for _, v := range vs {
			s.Max[k] = max(s.Max[k], v)
		}
	}
}

// ratios compares cove with podman and the floor (the ratio of the
// medians, and the median of the ratios within each round, "paired"), and
// computes the start time a network adds: the difference of the medians,
// and the median of the differences within each round.
func ratios(rep *report) {
	r := rep.Ratios
	cmp := func(name, test, field, a, b string) {
		sa, sb := rep.find(test, a), rep.find(test, b)
		if sa == nil || sb == nil || sb.Median[field] == 0 {
			return
		}
		r[name] = sa.Median[field] / sb.Median[field]
		var per []float64 // within each round: a and b ran next to each other
		for i := range sa.Results {
			per = append(per, sa.Results[i][field]/sb.Results[i][field])
		}
		r[name+" paired"] = benchbox.Summarize(per).Median
	}
	for _, other := range []string{"podman", "loopback floor"} {
		cmp("rr p50 cove/"+other, testRR, "p50_us", "cove", other)
		cmp("rr p99 cove/"+other, testRR, "p99_us", "cove", other)
		cmp("bulk cove/"+other, testBulk, "mb_per_s", "cove", other)
		cmp("conn cove/"+other, testConn, "per_s", "cove", other)
	}
	cmp("conn "+proxySeries+"/cove", testConn, "per_s", proxySeries, "cove")
	cmp("rr p50 podman/loopback floor", testRR, "p50_us", "podman", "loopback floor")
	for _, sys := range []string{"cove", "podman"} {
		cmp("rr p50 "+sys+"/its container loopback", testRR, "p50_us", sys, sys+" container loopback")
		cmp("bulk "+sys+"/its container loopback", testBulk, "mb_per_s", sys, sys+" container loopback")
	}
	cmp("bulk podman/loopback floor", testBulk, "mb_per_s", "podman", "loopback floor")
	cmp("conn-outside cove/podman", testConnOutside, "per_s", "cove", "podman")
	for _, sys := range [][2]string{{"cove", "cove --network cove"}, {"podman", "podman --network podman"}} {
		none, net := rep.find(testStart, sys[0]+" --network none"), rep.find(testStart, sys[1])
		if none == nil || net == nil {
			continue
		}
		r["start extra ms "+sys[0]] = net.Median["ms"] - none.Median["ms"]
		var diffs []float64
		for i := range net.Results {
			diffs = append(diffs, net.Results[i]["ms"]-none.Results[i]["ms"])
		}
		r["start extra ms paired "+sys[0]] = benchbox.Summarize(diffs).Median
	}
	if rel, fl := rep.find(testStart, releaseSeries), rep.find(testStart, floorSeries); rel != nil && fl != nil {
		r["release ms net of floor"] = rel.Median["ms"] - fl.Median["ms"]
	}
}

// releasesRan checks that the containers' release units (cove-release@,
// after each run --rm on network cove) could be loaded and that none
// failed: without them the start series would leave out what each start
// costs systemd after the payload.
func releasesRan(f *fixture) error {
	load, err := f.inside(nil, "systemctl", "show", "-P", "LoadState", "cove-release@nb-probe.service")
	if err == nil && strings.TrimSpace(load) != "loaded" {
		err = fmt.Errorf("cove-release@.service is %s", strings.TrimSpace(load))
	}
	if err != nil {
		return fmt.Errorf("the containers' release units: %w", err)
	}
	failed, err := f.inside(nil, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "cove-release@*")
	if err == nil && strings.TrimSpace(failed) != "" {
		err = fmt.Errorf("failed:\n%s", failed)
	}
	if err != nil {
		return fmt.Errorf("the containers' release units: %w", err)
	}
	return nil
}

// teardown removes the containers, the floor's server, the network and
// the outside namespace, and notes the links left in the sandbox (it
// goes with them when the box closes).
func (f *fixture) teardown(rep *report) error {
	rep.Machine["load average at the end"] = loadavg()
	f.close()
	if _, err := f.inside(nil, "systemctl", "stop", "cove-network@cove.service"); err != nil {
		return fmt.Errorf("stop cove's network: %w", err)
	}
	if err := releasesRan(f); err != nil {
		return err
	}
	var links []struct{ Ifname string }
	out, err := f.inside(nil, "ip", "-j", "link", "show")
	if err == nil {
		err = json.Unmarshal([]byte(out), &links)
	}
	if err != nil {
		return fmt.Errorf("links after the teardown: %w", err)
	}
	for _, l := range links {
		rep.LinksLeft = append(rep.LinksLeft, l.Ifname)
	}
	return nil
}
