package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	timeout := 2*time.Minute + time.Duration(workloads)*300*time.Millisecond // a cove run -d takes 0.1-0.2 s here
	_, err := benchbox.Inside(box.Ctx, box.SB, timeout, nil, "sh", "-c", script)
	return err
}

// psCmd is one command of the docker ps measurement.
type psCmd struct {
	what, how string
	stop      string // the service stopped before each run ("" for none)
	argv      []string
	samples   []float64
}

// psCommands lists the commands dockerPS times, in the order they run in
// a round, and sets podman up if it is wanted and installed; it notes in
// rep what is left out. Without the docker CLI there are none.
func psCommands(box *benchbox.Box, o options, rep *report) ([]*psCmd, error) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		rep.notes = append(rep.notes, "docker CLI not installed: docker ps not measured")
		return nil, nil
	}
	cmds := []*psCmd{
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
			return nil, fmt.Errorf("set up podman: %w", err)
		}
		argv := []string{docker, "-H", "unix://" + podmanSock, "ps"}
		cmds = append(cmds[:2], append([]*psCmd{
			{what: "docker ps, warm", how: "podman system service", argv: argv},
			{what: "docker ps, cold", how: "podman system service", stop: "bench-podman.service", argv: argv},
		}, cmds[2:]...)...)
	}
	return cmds, nil
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
	sock, svc := podmanUnits(conf, store)
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

// podmanUnits returns bench-podman.socket and bench-podman.service, which
// runs `podman system service` with the store and CONTAINERS_CONF conf.
func podmanUnits(conf, store string) (socket, service string) {
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
	socket, service, _ = strings.Cut(units, "---\n")
	return socket, service
}
