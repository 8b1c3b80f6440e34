package main

import (
	"strings"
	"testing"
)

// trace is one cove start and one systemd-run start as `perf script`
// prints them (trimmed to the events the phases use, plus noise).
const trace = `
            cove 100/100 10.000000: sched:sched_process_exec: filename=/w/cove pid=100 old_pid=100
            cove 100/101 10.001000: sched:sched_process_fork: comm=cove pid=101 child_comm=cove child_pid=102
         systemd 1/1 10.030000: sched:sched_process_fork: comm=systemd pid=1 child_comm=systemd child_pid=200
     cove-launch 200/200 10.037000: sched:sched_process_exec: filename=/w/cove-launch pid=200 old_pid=200
     cove-launch 200/200 10.057000: sched:sched_process_fork: comm=cove-launch pid=200 child_comm=cove-launch child_pid=201
       cove-init 201/201 10.058000: sched:sched_process_exec: filename=/w/cove-init pid=201 old_pid=201
     cove-launch 201/202 10.080000: sched:sched_process_exit: comm=cove-launch pid=202 prio=120 group_dead=false
            true 201/201 10.085000: sched:sched_process_exec: filename=/bin/true pid=201 old_pid=201
            true 201/201 10.088000: sched:sched_process_exit: comm=true pid=201 prio=120 group_dead=true
         systemd 1/1 10.090000: sched:sched_process_fork: comm=systemd pid=1 child_comm=systemd child_pid=210
              sh 210/210 10.098000: sched:sched_process_exec: filename=/bin/sh pid=210 old_pid=210
              sh 210/210 10.100000: sched:sched_process_exit: comm=sh pid=210 prio=120 group_dead=true
            cove 100/100 10.104000: sched:sched_process_exit: comm=cove pid=100 prio=120 group_dead=true
     systemd-run 300/300 11.000000: sched:sched_process_exec: filename=/usr/bin/systemd-run pid=300 old_pid=300
         systemd 1/1 11.020000: sched:sched_process_fork: comm=systemd pid=1 child_comm=systemd child_pid=301
            true 301/301 11.037000: sched:sched_process_exec: filename=/bin/true pid=301 old_pid=301
            true 301/301 11.038000: sched:sched_process_exit: comm=true pid=301 prio=120 group_dead=true
     systemd-run 300/300 11.042000: sched:sched_process_exit: comm=systemd-run pid=300 prio=120 group_dead=true
`

// noGate is a cove start whose unit has no ExecStop= gate (a removed
// run that systemd stops itself).
const noGate = `
            cove 100/100 10.000000: sched:sched_process_exec: filename=/w/cove pid=100 old_pid=100
         systemd 1/1 10.030000: sched:sched_process_fork: comm=systemd pid=1 child_comm=systemd child_pid=200
     cove-launch 200/200 10.037000: sched:sched_process_exec: filename=/w/cove-launch pid=200 old_pid=200
     cove-launch 200/200 10.057000: sched:sched_process_fork: comm=cove-launch pid=200 child_comm=cove-launch child_pid=201
       cove-init 201/201 10.058000: sched:sched_process_exec: filename=/w/cove-init pid=201 old_pid=201
            true 201/201 10.085000: sched:sched_process_exec: filename=/bin/true pid=201 old_pid=201
            true 201/201 10.088000: sched:sched_process_exit: comm=true pid=201 prio=120 group_dead=true
            cove 100/100 10.092000: sched:sched_process_exit: comm=cove pid=100 prio=120 group_dead=true
`

func TestPhases(t *testing.T) {
	for _, tc := range []struct {
		trace, client string
		split         splitter
		want          []float64
	}{
		{trace, "/w/cove", covePhases, []float64{30, 7, 20, 1, 27, 3, 2, 8, 2, 4, 104}},
		{noGate, "/w/cove", covePhases, []float64{30, 7, 20, 1, 27, 3, 4, 92}},
		{trace, "/usr/bin/systemd-run", systemdRunPhases, []float64{20, 17, 1, 4, 42}},
	} {
		evs, err := parseEvents(strings.NewReader(tc.trace))
		if err != nil {
			t.Fatal(err)
		}
		phases := summarizePhases(splitRuns(evs, tc.client, tc.split))
		if len(phases) != len(tc.want) {
			t.Fatalf("%s: %d phases, want %d", tc.client, len(phases), len(tc.want))
		}
		for i, p := range phases {
			if d := p.Median - tc.want[i]; d > 0.001 || d < -0.001 {
				t.Errorf("%s: phase %q = %.3f ms, want %.0f", tc.client, p.Name, p.Median, tc.want[i])
			}
		}
	}
}
