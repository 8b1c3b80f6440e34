package units

import (
	"cmp"
	"fmt"
	"strconv"
	"time"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// probeArgs are what a probe checks: "-- COMMAND…" in a container,
// "--agent -- COMMAND…" in a VM's guest (through its guest agent); a
// VM's guest port, "--port P [--http-path PATH]", at "--address
// HOST:PORT" (the forward of the port on the user network, 0.0.0.0 as
// 127.0.0.1) or on "--network NET" (the guest's leased address there,
// known when the probe runs).
func probeArgs(s *spec.Spec) []string {
	h := s.Health
	switch {
	case s.VM == nil:
		return append([]string{"--"}, h.Command...)
	case len(h.Command) > 0:
		return append([]string{"--agent", "--"}, h.Command...)
	}
	a := []string{"--port", strconv.Itoa(h.GuestPort())}
	if h.HTTP != 0 {
		a = append(a, "--http-path", cmp.Or(h.Path, "/"))
	}
	if n := s.Join().Network; n != "" {
		return append(a, "--network", n)
	}
	f, _ := s.VM.Network.TCPForward(h.GuestPort()) // validated: there is one
	host := f.HostAddr
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return append(a, "--address", fmt.Sprintf("%s:%d", host, f.HostPort)) // IPv4: validated
}

// CompileHealth returns the health-check timer and service of a spec with
// a [health] table; ok is false without one. No cove process stays
// resident: systemd starts one probe per interval, and the probe asks
// systemd to restart or kill an unhealthy workload.
func CompileHealth(s *spec.Spec, opt Options) (timer, svc Unit, ok bool) {
	h := s.Health
	if h == nil {
		return Unit{}, Unit{}, false
	}
	main := spec.UnitName(s.Name)
	timer = Unit{Name: spec.HealthTimerName(s.Name)}
	timer.add(SectionUnit, "Description", "", Str("health check timer of "+main))
	timer.add(SectionUnit, "BindsTo", "", Names{main})
	timer.add(SectionUnit, "After", "", Names{main})
	timer.add(SectionTimer, "OnActiveSec", "", Duration(max(h.Interval, h.StartPeriod)))
	timer.add(SectionTimer, "OnUnitActiveSec", "", Duration(h.Interval))
	timer.add(SectionTimer, "AccuracyUSec", "AccuracySec", Duration(time.Millisecond))
	timer.add(SectionTimer, "RemainAfterElapse", "", Bool(false))

	svc = Unit{Name: spec.HealthServiceName(s.Name)}
	svc.add(SectionUnit, "Description", "", Str("health check of "+main))
	// The timer starts it every interval, more often than systemd's
	// default start limit (5 starts in 10 s) allows for intervals below 2 s.
	svc.add(SectionUnit, "StartLimitIntervalUSec", "StartLimitIntervalSec", Duration(0))
	svc.add(SectionService, "Type", "", Str("oneshot"))
	svc.add(SectionService, "ExecStart", "", Exec(append([]string{opt.Launcher, launch.HealthVerb,
		"--name", s.Name,
		"--timeout", h.Timeout.String(),
		"--retries", strconv.Itoa(h.Retries),
		"--start-period", h.StartPeriod.String(),
		"--on-failure", h.OnFailure},
		probeArgs(s)...)))
	svc.add(SectionService, "Slice", "", Str(Slice))
	// The probe runs with the container's capabilities (CAP_MKNOD among
	// them) but in this unit's cgroup: close its devices as the
	// container's are.
	svc.add(SectionService, "DevicePolicy", "", Str("closed"))
	svc.add(SectionService, "SyslogIdentifier", "", Str(s.Name+"-health"))
	return timer, svc, true
}
