package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	imagepng "image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/vmguest"
)

// needGuest skips without root/systemd and fails when the guest or QEMU is
// missing (scripts/deps installs QEMU).
func needGuest(t *testing.T) vmguest.Guest {
	t.Helper()
	env.Need(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: apt-get install qemu-system-x86 (scripts/deps does)")
	}
	// Built once per run (a Debian cloud kernel, unpacked, and a busybox
	// initramfs), cached under /var/cache/cove-tests across runs.
	guest, err := vmguest.Default()
	if err != nil {
		t.Fatalf("build the test guest: %v", err)
	}
	return guest
}

// vmSpec writes a VM spec booting the test guest in mode; extra is
// appended (after [vm], so further [vm] keys go first).
func vmSpec(t *testing.T, g vmguest.Guest, name, mode, vmExtra, extra string) string {
	t.Helper()
	return declaredText(t, filepath.Join(workDir, "vms"), name, g.Spec(vmguest.Cmdline(mode), vmExtra, extra))
}

// waitLog waits until the workload's journal contains marker.
func waitLog(t *testing.T, name, marker string, d time.Duration) {
	t.Helper()
	eventually(t, d, name+" to log "+marker, func() bool {
		return strings.Contains(cove(t, "logs", name).Stdout, marker)
	})
}

// TestVMLifecycle: QEMU is the unit's main process, the guest's console is
// in the journal, the VM is a machine of class vm, cove status says which
// accelerator was chosen, and cove stop powers the guest off through ACPI
// (its shutdown hook runs) with exit status 0.
func TestVMLifecycle(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmwait")
	// accel = "auto": the launcher opens /dev/kvm, which the unit's closed
	// device policy allows (DeviceAllow=/dev/kvm rw).
	path := vmSpec(t, g, "vmwait", "wait", "", "")
	if err := os.WriteFile(path, []byte(strings.Replace(readFile(t, path), `accel = "tcg"`, `accel = "auto"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCove(t, "run", "-d", path)
	waitLog(t, "vmwait", vmguest.MarkerWaiting, 60*time.Second)
	pid := show(t, "cove-vmwait.service", "MainPID")
	if exe := inside(t, "readlink", "/proc/"+pid+"/exe").Stdout; !strings.Contains(exe, "qemu-system-x86_64") {
		t.Errorf("MainPID %s runs %q, want QEMU", pid, exe)
	}
	if list := inside(t, "machinectl", "list", "--no-legend").Stdout; !strings.Contains(list, "vmwait") || !strings.Contains(list, "vm") {
		t.Errorf("machinectl list: %q", list)
	}
	st := mustCove(t, "status", "vmwait")
	if !strings.Contains(st, "vm") || !strings.Contains(st, "kvm") && !strings.Contains(st, "tcg") {
		t.Errorf("cove status lacks kind or accelerator:\n%s", st)
	}
	if _, err := os.Stat("/dev/kvm"); err == nil && !strings.Contains(st, "/dev/kvm opens") {
		t.Errorf("the VM's unit could not open /dev/kvm (device policy?):\n%s", st)
	}
	if m := show(t, "cove-vmwait.service", "MemoryMax"); m != fmt.Sprint(256<<20+384<<20) {
		t.Errorf("MemoryMax = %s, want guest memory + 384 MiB", m)
	}
	vmThroughAPI(t, "vmwait", pid)
	start := time.Now()
	mustCove(t, "stop", "vmwait")
	waitLog(t, "vmwait", vmguest.MarkerShutdownHook, 5*time.Second)
	if st := show(t, "cove-vmwait.service", "ExecMainStatus"); st != "0" {
		t.Errorf("graceful stop: ExecMainStatus %s after %s", st, time.Since(start))
	}
	eventually(t, 5*time.Second, "vmwait to leave machinectl", func() bool {
		return !strings.Contains(inside(t, "machinectl", "list", "--no-legend").Stdout, "vmwait")
	})
}

// vmThroughAPI checks that the API lists running VM name (main PID pid) as
// a workload of kind vm, and Docker's container list shows it with label
// cove.kind=vm.
func vmThroughAPI(t *testing.T, name, pid string) {
	t.Helper()
	needAPI(t)
	var ws []struct {
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		MainPID int    `json:"main_pid"`
	}
	r := viaAPI(t, "ps", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &ws); err != nil {
		t.Fatalf("cove --host ps --json: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	found := false
	for _, w := range ws {
		found = found || w.Name == name && w.Kind == "vm" && fmt.Sprint(w.MainPID) == pid
	}
	if !found {
		t.Errorf("cove --host ps --json has no running vm %s (MainPID %s): %s", name, pid, r.Stdout)
	}
	code, body := rawRequest(t, "GET /v1.41/containers/json?filters=%7B%22label%22%3A%5B%22cove.kind%3Dvm%22%5D%7D HTTP/1.1\r\nHost: cove\r\nConnection: close\r\n\r\n")
	var cs []struct {
		Names  []string
		State  string
		Labels map[string]string
	}
	if err := json.Unmarshal([]byte(body), &cs); code != 200 || err != nil || len(cs) != 1 ||
		cs[0].Names[0] != "/"+name || cs[0].State != "running" || cs[0].Labels["cove.kind"] != "vm" {
		t.Errorf("Docker list of label cove.kind=vm: %d %v: %s", code, err, body)
	}
}

// TestVMGuestPoweroffAndCrash: a guest that powers itself off ends the
// unit cleanly without a restart under on-failure; one that crashes is
// restarted.
func TestVMGuestPoweroffAndCrash(t *testing.T) {
	g := needGuest(t)
	pruneAll(t) // declared units stay loaded after they end, for inspection
	onFailure := "restart = \"on-failure\"\nrestart_delay = \"500ms\"\n"
	cove(t, "apply", vmSpec(t, g, "vmoff", "poweroff", "", onFailure), vmSpec(t, g, "vmcrash", "crash", "", onFailure))
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []string{"ActiveState", "SubState", "ExecMainPID", "ExecMainStatus", "Result", "NRestarts"} {
				t.Logf("vmoff %s=%s", p, show(t, "cove-vmoff.service", p))
			}
			t.Logf("logs:\n%s", cove(t, "logs", "vmoff").Stdout)
		}
	})
	waitLog(t, "vmoff", "Power down", 60*time.Second)
	eventually(t, 10*time.Second, "vmoff to end", func() bool {
		return show(t, "cove-vmoff.service", "ActiveState") == "inactive"
	})
	if st, n := show(t, "cove-vmoff.service", "ExecMainStatus"), show(t, "cove-vmoff.service", "NRestarts"); st != "0" || n != "0" {
		t.Errorf("guest poweroff: ExecMainStatus %s, NRestarts %s; want 0, 0", st, n)
	}
	eventually(t, 90*time.Second, "vmcrash to be restarted", func() bool {
		return show(t, "cove-vmcrash.service", "NRestarts") != "0"
	})
}

// TestVMIgnoresACPI: a guest that ignores the power button is killed
// after stop_timeout.
func TestVMIgnoresACPI(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmdeaf")
	p := vmSpec(t, g, "vmdeaf", "ignore-acpi", "", "")
	p = declaredText(t, filepath.Dir(p), "vmdeaf", strings.Replace(readFile(t, p), `stop_timeout = "10s"`, `stop_timeout = "3s"`, 1))
	mustCove(t, "run", "-d", p)
	waitLog(t, "vmdeaf", vmguest.MarkerIgnoring, 60*time.Second)
	start := time.Now()
	mustCove(t, "stop", "vmdeaf")
	if d := time.Since(start); d < 3*time.Second || d > 10*time.Second {
		t.Errorf("stop took %s; want about stop_timeout (3s)", d)
	}
	if st := show(t, "cove-vmdeaf.service", "ActiveState"); st == "active" {
		t.Errorf("vmdeaf still active")
	}
}

// TestVMDisk: a qcow2 disk written in one boot is read back in the next;
// a second VM run on it while the first runs is refused before it starts,
// and QEMU's lock keeps anything else from opening it.
func TestVMDisk(t *testing.T) {
	g := needGuest(t)
	disk := filepath.Join(workDir, "data.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	diskTable := fmt.Sprintf("[[vm.disk]]\npath = %q\n", disk)
	for boot := 1; boot <= 2; boot++ {
		r := cove(t, "run", "--rm", vmSpec(t, g, "vmdisk", "disk", diskTable, ""))
		if r.Code != 0 {
			t.Fatalf("boot %d: exit %d: %s", boot, r.Code, r.Stderr)
		}
		if want := fmt.Sprintf("%s%d", vmguest.MarkerDiskCount, boot); !strings.Contains(r.Stdout, want) {
			t.Errorf("boot %d: console lacks %s:\n%s", boot, want, harness.Tail(r.Stdout, 20))
		}
	}
	cleanupWorkload(t, "vmholder")
	cleanupWorkload(t, "vmthief")
	mustCove(t, "run", "-d", vmSpec(t, g, "vmholder", "wait", diskTable, ""))
	waitLog(t, "vmholder", vmguest.MarkerWaiting, 60*time.Second)
	thief := vmSpec(t, g, "vmthief", "wait", diskTable, "")
	if r := cove(t, "run", "-d", thief); r.Code != 2 || !strings.Contains(r.Stderr, "is also a writable disk of VM vmholder") {
		t.Errorf("a second run of the disk: exit %d, stderr %q; want 2, refused before it starts", r.Code, r.Stderr)
	}
	// What else opens the disk meets QEMU's lock (file.locking=on).
	if r := inside(t, "qemu-img", "info", disk); r.Code == 0 || !strings.Contains(r.Stderr, "lock") {
		t.Errorf("qemu-img info of the disk a VM writes: exit %d, stderr %q; want QEMU's write lock to refuse it", r.Code, r.Stderr)
	}
}

// TestVMPortForward: a TCP service in the guest answers on the forwarded
// host port.
func TestVMPortForward(t *testing.T) {
	g := needGuest(t)
	port := freePort(t)
	cleanupWorkload(t, "vmnet")
	net := fmt.Sprintf("[vm.network]\nmode = \"user\"\nforward = [\"127.0.0.1:%d:80/tcp\"]\n", port)
	mustCove(t, "run", "-d", vmSpec(t, g, "vmnet", "net", net, ""))
	waitLog(t, "vmnet", vmguest.MarkerNetUp, 60*time.Second)
	var body string
	eventually(t, 10*time.Second, "the forwarded port to answer", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, vmguest.MarkerHTTP)
	})
}

// TestVMReadyTCP: with ready = "tcp:PORT" a VM's unit becomes active only
// once the guest's service answers on the forward's host port, so a
// request right after cove run -d returns is answered (QEMU alone accepts
// on the port from its start and drops the connection while the guest
// boots).
func TestVMReadyTCP(t *testing.T) {
	g := needGuest(t)
	port := freePort(t)
	cleanupWorkload(t, "vmready")
	net := fmt.Sprintf("[vm.network]\nmode = \"user\"\nforward = [\"127.0.0.1:%d:80/tcp\"]\n", port)
	mustCove(t, "run", "-d", vmSpec(t, g, "vmready", "net", net, fmt.Sprintf("ready = \"tcp:%d\"\n", port)))
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("the VM is active but its service does not answer: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), vmguest.MarkerHTTP) {
		t.Errorf("the guest's service answered %q", b)
	}
}

// freePort returns a TCP port free on the host's loopback.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestVMConsole: cove console talks to the guest's interactive serial
// port and detaching leaves the VM running.
func TestVMConsole(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmecho")
	mustCove(t, "run", "-d", vmSpec(t, g, "vmecho", "echo", "", ""))
	waitLog(t, "vmecho", vmguest.MarkerReading, 60*time.Second)
	r := insideStdin(t, "hello cove\n", coveBin, "console", "vmecho")
	if !strings.Contains(r.Stdout, vmguest.MarkerEcho+"hello cove") {
		t.Errorf("console answer: %q %s (exit %d)\nlogs:\n%s", r.Stdout, r.Stderr, r.Code, cove(t, "logs", "vmecho").Stdout)
	}
}

// TestVMBadSpecs: VM specs that cannot work here fail before anything
// starts, with FILE:LINE:COL and exit 2.
func TestVMBadSpecs(t *testing.T) {
	g := needGuest(t)
	dir := filepath.Join(workDir, "badvm")
	cases := map[string]struct{ text, where string }{
		"nokernel": {strings.Replace(readFile(t, vmSpec(t, g, "x", "wait", "", "")), g.Kernel, "/nonexistent/vmlinuz", 1), ":4:1: vm.kernel"},
		"kvm":      {strings.Replace(readFile(t, vmSpec(t, g, "x", "wait", "", "")), `accel = "tcg"`, `accel = "kvm"`, 1), ":8:1: vm.accel"},
		"tiny":     {strings.Replace(readFile(t, vmSpec(t, g, "x", "wait", "", "")), `memory = "256M"`, `memory = "16M"`, 1), ":7:1: vm.memory"},
		"machine":  {strings.Replace(readFile(t, vmSpec(t, g, "x", "wait", "", "")), `accel = "tcg"`, `machine = "pc"`, 1), ":8:1: vm.machine"},
	}
	for name, c := range cases {
		p := declaredText(t, dir, name, c.text)
		r := cove(t, "run", "-d", p)
		if r.Code != 2 || !strings.Contains(r.Stderr, p+c.where) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %s", name, r.Code, r.Stderr, p+c.where)
		}
	}
}

// readFile returns a file's content.
func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := exec.Command("cat", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// qemuImg runs qemu-img on the host, failing t on error.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %q: %v\n%s", args, err, out)
	}
}

// baseImage creates an empty 64M qcow2 base image called name in the
// tests' directory of base images and returns its path.
func baseImage(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(workDir, "vm-images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, name)
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "64M")
	return base
}

// sha256File is the hex SHA-256 of the file at p.
func sha256File(t *testing.T, p string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// TestVMBaseImage: a disk from a base image is the VM's own overlay,
// grown to size, created at first start and kept across runs (what the
// guest wrote is still there), while the base is never written (same
// checksum); cove rm removes the overlay. A base that is missing or whose
// backing chain leaves its directory fails before anything starts.
func TestVMBaseImage(t *testing.T) {
	g := needGuest(t)
	base := baseImage(t, "base.qcow2")
	dir := filepath.Dir(base)
	before := sha256File(t, base)
	cleanupWorkload(t, "vmbase")
	diskTable := fmt.Sprintf("[[vm.disk]]\nbase = %q\nsize = \"128M\"\n", base)
	// The guest counts its boots on its disk and powers off; the unit
	// stays loaded (restart = "no") until cove rm, and cove restart boots
	// it again.
	mustCove(t, "run", "-d", vmSpec(t, g, "vmbase", "disk", diskTable, ""))
	for boot := 1; boot <= 2; boot++ {
		if boot > 1 {
			mustCove(t, "restart", "vmbase")
		}
		waitLog(t, "vmbase", fmt.Sprintf("%s%d", vmguest.MarkerDiskCount, boot), 60*time.Second)
	}
	if logs := cove(t, "logs", "vmbase").Stdout; !strings.Contains(logs, "COVE-DISKS=vda:262144") {
		t.Errorf("the overlay is not 128M:\n%s", harness.Tail(logs, 20))
	}
	if after := sha256File(t, base); after != before {
		t.Errorf("the base image changed: sha256 %s, was %s", after, before)
	}
	const overlay = "/var/lib/cove/vms/vmbase/disk1.qcow2"
	if info := inside(t, "qemu-img", "info", "-U", overlay).Stdout; !strings.Contains(info, "backing file: "+base) {
		t.Errorf("overlay %s:\n%s", overlay, info)
	}
	mustCove(t, "rm", "vmbase")
	if r := inside(t, "ls", "-A", "/var/lib/cove/vms"); strings.Contains(r.Stdout, "vmbase") {
		t.Errorf("cove rm left the VM's state: %q", r.Stdout)
	}

	outside := filepath.Join(workDir, "outside.img")
	qemuImg(t, "create", "-q", "-f", "raw", outside, "1M")
	escaping := filepath.Join(dir, "escaping.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", outside, escaping)
	for name, c := range map[string]struct{ base, want string }{
		"missing":  {filepath.Join(dir, "nonexistent.qcow2"), "is not a readable file"},
		"escaping": {escaping, "outside the directories"},
	} {
		p := vmSpec(t, g, "vmbad"+name, "disk", fmt.Sprintf("[[vm.disk]]\nbase = %q\n", c.base), "")
		r := cove(t, "run", "-d", p)
		if where := p + ":10:1: vm.disk[1].base: "; r.Code != 2 || !strings.Contains(r.Stderr, where) || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2, %s… %s", name, r.Code, r.Stderr, where, c.want)
		}
	}
}

// TestVMCloudInit: a VM with [vm.cloud_init] gets a NoCloud seed (a vfat
// disk labelled CIDATA) whose meta-data and user-data the guest reads;
// with cove run --rm the VM's state directory goes when it ends. A
// user_data file is the seed's user-data as it is.
func TestVMCloudInit(t *testing.T) {
	g := needGuest(t)
	ci := "[vm.cloud_init]\nhostname = \"web-1\"\nssh_authorized_keys = [\"ssh-ed25519 AAAAC3Nza me@laptop\"]\nusers = [\"alice\"]\n"
	cleanupWorkload(t, "vmseed")
	r := cove(t, "run", "--rm", vmSpec(t, g, "vmseed", "cidata", ci, ""))
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	for _, want := range []string{
		`COVE-SEED:meta-data:instance-id: "vmseed"`,
		`COVE-SEED:meta-data:local-hostname: "web-1"`,
		`COVE-SEED:user-data:#cloud-config`,
		`COVE-SEED:user-data:hostname: "web-1"`,
		`COVE-SEED:user-data:  - "ssh-ed25519 AAAAC3Nza me@laptop"`,
		`COVE-SEED:user-data:  - name: "alice"`,
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("console lacks %q:\n%s", want, harness.Tail(r.Stdout, 30))
		}
	}
	if r := inside(t, "test", "-e", "/var/lib/cove/vms/vmseed"); r.Code == 0 {
		t.Error("cove run --rm left the VM's state directory /var/lib/cove/vms/vmseed (its seed)")
	}
	userData := filepath.Join(workDir, "user-data.yaml")
	if err := os.WriteFile(userData, []byte("#cloud-config\nruncmd:\n  - [echo, from-the-file]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = cove(t, "run", "--rm", vmSpec(t, g, "vmseedfile", "cidata", fmt.Sprintf("[vm.cloud_init]\nuser_data = %q\n", userData), ""))
	for _, want := range []string{"COVE-SEED:user-data:#cloud-config", "COVE-SEED:user-data:  - [echo, from-the-file]", `COVE-SEED:meta-data:instance-id: "vmseedfile"`} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("user_data from a file: console lacks %q (exit %d):\n%s", want, r.Code, harness.Tail(r.Stdout, 30))
		}
	}
	if strings.Contains(r.Stdout, "COVE-SEED:network-config:") {
		t.Error("a VM on QEMU's user network got a network-config (the image's default, DHCP, is wanted)")
	}
}

// firmwareSpec is a q35 VM booting the guest's bzImage (its EFI stub)
// through firmware in mode firmware, with vmExtra more [vm] keys.
func firmwareSpec(t *testing.T, g vmguest.Guest, name, vmExtra string) string {
	t.Helper()
	text := g.Spec(vmguest.Cmdline("firmware"), "machine = \"q35\"\n"+vmExtra, "")
	return declaredText(t, filepath.Join(workDir, "vms"), name, strings.Replace(text, fmt.Sprintf("kernel = %q", g.Kernel), fmt.Sprintf("kernel = %q", g.BzImage), 1))
}

// TestVMUEFI: with firmware = "uefi" the guest boots through OVMF (it
// sees /sys/firmware/efi, Secure Boot off) and keeps its NVRAM, a copy of
// OVMF's template, in its state directory; with "uefi-secure" the
// firmware reports Secure Boot on. The guest kernel (Debian's, signed by
// Debian, not by a key of OVMF's Microsoft db) is loaded by OVMF's QEMU
// kernel loader (-kernel), which boots it under Secure Boot too: this
// shows the firmware's mode, not that an untrusted image is refused.
func TestVMUEFI(t *testing.T) {
	g := needGuest(t)
	template, err := os.Stat("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, firmware, secureBoot string }{
		{"vmefi", "uefi", "0"},
		{"vmsecure", "uefi-secure", "1"},
	} {
		cleanupWorkload(t, c.name)
		mustCove(t, "run", "-d", firmwareSpec(t, g, c.name, fmt.Sprintf("firmware = %q\n", c.firmware)))
		waitLog(t, c.name, vmguest.MarkerWaiting, 120*time.Second)
		logs := cove(t, "logs", c.name).Stdout
		for _, want := range []string{vmguest.MarkerEFI + "yes", vmguest.MarkerSecureBoot + c.secureBoot, vmguest.MarkerTPM + "none"} {
			if !strings.Contains(logs, want) {
				t.Errorf("%s: logs lack %s:\n%s", c.firmware, want, harness.Tail(logs, 30))
			}
		}
		mustCove(t, "stop", c.name)
	}
	if r := inside(t, "stat", "-c", "%s", "/var/lib/cove/vms/vmefi/nvram.fd"); strings.TrimSpace(r.Stdout) != fmt.Sprint(template.Size()) {
		t.Errorf("NVRAM: %q %s", r.Stdout, r.Stderr)
	}
}

// TestVMTPM: with tpm = true the guest sees a TPM (swtpm, started by the
// launcher in the VM's unit), and swtpm does not outlive QEMU killed with
// SIGKILL.
func TestVMTPM(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmtpm")
	mustCove(t, "run", "-d", firmwareSpec(t, g, "vmtpm", "tpm = true\n"))
	waitLog(t, "vmtpm", vmguest.MarkerWaiting, 120*time.Second)
	if logs := cove(t, "logs", "vmtpm").Stdout; !strings.Contains(logs, vmguest.MarkerTPM+"tpm0") {
		t.Errorf("logs lack %stpm0:\n%s", vmguest.MarkerTPM, harness.Tail(logs, 30))
	}
	// swtpm runs in the VM's unit, so that stopping the unit ends it.
	pid := strings.TrimSpace(inside(t, "pgrep", "-f", "vms/vmtpm/tpm").Stdout)
	if pid == "" || !strings.Contains(inside(t, "cat", "/proc/"+pid+"/cgroup").Stdout, "cove-vmtpm.service") {
		t.Fatalf("no swtpm (pid %q) in the VM's unit", pid)
	}
	inside(t, "kill", "-KILL", show(t, "cove-vmtpm.service", "MainPID"))
	eventually(t, 20*time.Second, "swtpm to end with QEMU", func() bool {
		return inside(t, "pgrep", "-f", "vms/vmtpm/tpm").Stdout == ""
	})
}

// TestVMFirmwareBadSpecs: firmware and TPM needs are checked before
// anything starts: a missing ISO, uefi-secure on a host without OVMF's
// Secure Boot build, tpm on a host without swtpm each exit 2 at the key
// and leave no unit.
func TestVMFirmwareBadSpecs(t *testing.T) {
	g := needGuest(t)
	p := firmwareSpec(t, g, "vmbadcdrom", "[[vm.cdrom]]\npath = \"/nonexistent/installer.iso\"\n")
	if r := cove(t, "run", "-d", p); r.Code != 2 || !strings.Contains(r.Stderr, p+":11:1: vm.cdrom[1].path") {
		t.Errorf("missing ISO: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// The host without OVMF's Secure Boot build (its directory hidden in
	// a mount namespace of the command), without swtpm (not in PATH).
	hideOVMF := []string{"unshare", "-m", "sh", "-c", `mount -t tmpfs none /usr/share/OVMF && exec "$0" "$@"`, coveBin}
	for _, c := range []struct{ name, extra, key, want string }{
		{"vmnosecboot", "firmware = \"uefi-secure\"\n", "vm.firmware", "needs /usr/share/OVMF/OVMF_CODE_4M.secboot.fd"},
		{"vmnoswtpm", "tpm = true\n", "vm.tpm", "needs swtpm"},
	} {
		p := firmwareSpec(t, g, c.name, c.extra)
		cmd := []string{"env", "PATH=/nonexistent", coveBin, "run", "-d", p}
		if c.key == "vm.firmware" {
			cmd = append(hideOVMF, "run", "-d", p)
		}
		r := inside(t, cmd[0], cmd[1:]...)
		if r.Code != 2 || !regexp.MustCompile(regexp.QuoteMeta(p)+`:\d+:\d+: `+regexp.QuoteMeta(c.key)+`: .*`+regexp.QuoteMeta(c.want)).MatchString(r.Stderr) {
			t.Errorf("%s without its host part: exit %d, stderr %q; want 2, %s:LINE:COL: %s: …%s", c.key, r.Code, r.Stderr, p, c.key, c.want)
		}
		if st := show(t, "cove-"+c.name+".service", "LoadState"); st != "not-found" {
			t.Errorf("the refused %s left a unit (%s)", c.name, st)
		}
	}
}

// TestVMDisplay: a q35 VM with display = "vnc" has a screen: cove vnc
// serves it on a TCP address, where a VNC client completes the RFB
// handshake and gets a framebuffer update of the size the server
// announced, and cove screenshot saves a PNG of that size. A VM without
// a display has no screen to serve or save.
func TestVMDisplay(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmscreen")
	mustCove(t, "run", "-d", firmwareSpec(t, g, "vmscreen", "display = \"vnc\"\n"))
	waitLog(t, "vmscreen", vmguest.MarkerWaiting, 120*time.Second)

	line := harness.Background(t, sb, coveBin, "vnc", "vmscreen", "--listen", "127.0.0.1:0")
	m := regexp.MustCompile(`at (127\.0\.0\.1:[0-9]+) `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("cove vnc printed %q, want the address it listens on", line)
	}
	w, h := rfbFramebuffer(t, m[1])

	png := filepath.Join(workDir, "vmscreen.png")
	mustCove(t, "screenshot", "vmscreen", png)
	f, err := os.Open(png)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := imagepng.Decode(f)
	if err != nil {
		t.Fatalf("cove screenshot wrote no PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot is %v, want the framebuffer's %dx%d", b, w, h)
	}

	cleanupWorkload(t, "vmplain")
	mustCove(t, "run", "-d", firmwareSpec(t, g, "vmplain", ""))
	for _, args := range [][]string{{"screenshot", "vmplain", png}, {"vnc", "vmplain"}} {
		if r := cove(t, args...); r.Code != 1 || !strings.Contains(r.Stderr, "vmplain has no screen") {
			t.Errorf("cove %v of a VM without a display: exit %d, %q", args, r.Code, r.Stderr)
		}
	}
}

// rfbFramebuffer speaks RFB 3.8 to the VNC server at addr: version,
// security type None, a shared ClientInit; then it asks for the whole
// framebuffer and checks that an update comes. It returns the
// framebuffer's size from ServerInit.
func rfbFramebuffer(t *testing.T, addr string) (w, h int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("RFB: read %d bytes: %v", n, err)
		}
		return b
	}
	if v := string(read(12)); v != "RFB 003.008\n" {
		t.Fatalf("RFB version %q", v)
	}
	c.Write([]byte("RFB 003.008\n"))
	if types := read(int(read(1)[0])); !bytes.Contains(types, []byte{1}) {
		t.Fatalf("RFB security types %v lack None (1)", types)
	}
	c.Write([]byte{1})
	if res := read(4); !bytes.Equal(res, []byte{0, 0, 0, 0}) {
		t.Fatalf("RFB security result %v", res)
	}
	c.Write([]byte{1}) // ClientInit: shared
	init := read(24)
	w, h = int(binary.BigEndian.Uint16(init[0:])), int(binary.BigEndian.Uint16(init[2:]))
	read(int(binary.BigEndian.Uint32(init[20:]))) // the desktop's name
	req := []byte{3, 0, 0, 0, 0, 0}               // FramebufferUpdateRequest, not incremental, from 0,0
	req = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(req, uint16(w)), uint16(h))
	c.Write(req)
	if typ := read(1)[0]; typ != 0 {
		t.Errorf("RFB: message type %d after an update request, want 0 (FramebufferUpdate)", typ)
	}
	if w == 0 || h == 0 {
		t.Errorf("RFB framebuffer %dx%d", w, h)
	}
	return w, h
}

// TestVMSharedDisk: a disk image one VM writes cannot be another VM's:
// cove apply of two declared VMs writing one image exits 2 at the second
// one's key and starts neither, and cove run of a VM that would read a
// declared VM's writable disk, or write a disk a cove run -d VM writes,
// exits 2 before anything starts.
func TestVMSharedDisk(t *testing.T) {
	g := needGuest(t)
	pruneAll(t)
	disk := filepath.Join(workDir, "shared.img")
	qemuImg(t, "create", "-q", "-f", "raw", disk, "16M")
	writes := fmt.Sprintf("[[vm.disk]]\npath = %q\nformat = \"raw\"\n", disk)
	both := filepath.Join(workDir, "shared-both")
	declaredText(t, both, "vmsharea", g.Spec(vmguest.Cmdline("wait"), writes, ""))
	b := declaredText(t, both, "vmshareb", g.Spec(vmguest.Cmdline("wait"), writes, ""))
	r := cove(t, "apply", both)
	if want := b + ":10:1: vm.disk[1].path: " + disk + " is also a writable disk of VM vmsharea"; r.Code != 2 || !strings.Contains(r.Stderr, want) {
		t.Errorf("cove apply of two VMs writing one disk: exit %d, stderr %q; want 2 and %q", r.Code, r.Stderr, want)
	}
	for _, name := range []string{"vmsharea", "vmshareb"} {
		if st := show(t, "cove-"+name+".service", "LoadState"); st != "not-found" {
			t.Errorf("cove-%s.service is %s after the refused apply, want not-found", name, st)
		}
	}
	mustCove(t, "apply", declaredText(t, filepath.Join(workDir, "shared-one"), "vmsharea", g.Spec(vmguest.Cmdline("wait"), writes, "")))
	reads := declaredText(t, filepath.Join(workDir, "shared-run"), "vmsharec", g.Spec(vmguest.Cmdline("wait"), writes+"read_only = true\n", ""))
	if r := cove(t, "run", "-d", reads); r.Code != 2 || !strings.Contains(r.Stderr, reads+":10:1: vm.disk[1].path") {
		t.Errorf("cove run of a VM reading a declared VM's disk: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if st := show(t, "cove-vmsharec.service", "LoadState"); st != "not-found" {
		t.Errorf("the refused run left cove-vmsharec.service (%s)", st)
	}
	// Two runs: the second is checked against the first, loaded, VM.
	disk2 := filepath.Join(workDir, "shared2.img")
	qemuImg(t, "create", "-q", "-f", "raw", disk2, "16M")
	writes2 := fmt.Sprintf("[[vm.disk]]\npath = %q\nformat = \"raw\"\n", disk2)
	cleanupWorkload(t, "vmshared")
	mustCove(t, "run", "-d", declaredText(t, filepath.Join(workDir, "shared-run"), "vmshared", g.Spec(vmguest.Cmdline("wait"), writes2, "")))
	second := declaredText(t, filepath.Join(workDir, "shared-run"), "vmsharee", g.Spec(vmguest.Cmdline("wait"), writes2, ""))
	want := second + ":10:1: vm.disk[1].path: " + disk2 + " is also a writable disk of VM vmshared (cove-vmshared.service, loaded)"
	if r := cove(t, "run", "-d", second); r.Code != 2 || !strings.Contains(r.Stderr, want) {
		t.Errorf("cove run of a VM writing a running VM's disk: exit %d, stderr %q; want 2 and %q", r.Code, r.Stderr, want)
	}
	if st := show(t, "cove-vmsharee.service", "LoadState"); st != "not-found" {
		t.Errorf("the refused run left cove-vmsharee.service (%s)", st)
	}
}

// TestVMWindowsDevices: os = "windows" cannot be shown with Windows here
// (no image, no KVM), so a Linux guest boots on exactly the devices and
// firmware the preset gives Windows: UEFI with Secure Boot, a TPM, the
// VGA screen, its disk as ide-hd on the AHCI controller, an e1000e NIC,
// the RTC in local time and the Hyper-V enlightenments TCG has. QEMU
// accepts them and the guest reaches its marker, with its disk and TPM.
func TestVMWindowsDevices(t *testing.T) {
	g := needGuest(t)
	cleanupWorkload(t, "vmwin")
	disk := filepath.Join(workDir, "win.img")
	qemuImg(t, "create", "-q", "-f", "raw", disk, "16M")
	extra := fmt.Sprintf("os = \"windows\"\n[[vm.disk]]\npath = %q\nformat = \"raw\"\n[vm.network]\nmode = \"user\"\n", disk)
	mustCove(t, "run", "-d", firmwareSpec(t, g, "vmwin", extra))
	waitLog(t, "vmwin", vmguest.MarkerWaiting, 120*time.Second)
	cmdline := strings.ReplaceAll(inside(t, "cat", "/proc/"+show(t, "cove-vmwin.service", "MainPID")+"/cmdline").Stdout, "\x00", " ")
	for _, want := range []string{"-cpu max,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-time ", "ide-hd,drive=disk0,bus=ide.0", "-device e1000e,netdev=net0",
		"-rtc base=localtime", "OVMF_CODE_4M.secboot.fd", "tpm-crb", "-device VGA"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("QEMU's command line lacks %q:\n%s", want, cmdline)
		}
	}
	if logs := cove(t, "logs", "vmwin").Stdout; !strings.Contains(logs, vmguest.MarkerTPM+"tpm0") {
		t.Errorf("the guest saw no TPM:\n%s", harness.Tail(logs, 30))
	}
}

// TestVMKilledMidWrite: while the guest rewrites files with fsync on its
// overlay, cove status shows its vCPU time, memory and the disk's writes
// (from QMP); QEMU killed with SIGKILL then leaves an overlay qemu-img check finds
// no corruption in (leaked clusters, which a crash may leave and which
// waste space only, are allowed), with its lock released.
func TestVMKilledMidWrite(t *testing.T) {
	g := needGuest(t)
	base := baseImage(t, "writer-base.qcow2")
	cleanupWorkload(t, "vmwriter")
	mustCove(t, "run", "-d", vmSpec(t, g, "vmwriter", "writer", fmt.Sprintf("[[vm.disk]]\nbase = %q\n", base), ""))
	waitLog(t, "vmwriter", vmguest.MarkerWriting, 60*time.Second)
	time.Sleep(2 * time.Second) // writes under way
	status := mustCove(t, "status", "vmwriter")
	for _, re := range []string{`(?m)^vCPU time: +[0-9.]+m?s \(1 vCPUs\)$`, `(?m)^Guest memory: +256\.0 MiB$`,
		`(?m)^Disk I/O: +disk0: read [0-9.]+ [KMG]?i?B \([1-9][0-9]* ops\), written [0-9.]+ [KMG]iB \([1-9][0-9]* ops\)$`} {
		if !regexp.MustCompile(re).MatchString(status) {
			t.Errorf("cove status of the writing VM does not match %s:\n%s", re, status)
		}
	}
	inside(t, "kill", "-KILL", show(t, "cove-vmwriter.service", "MainPID"))
	eventually(t, 20*time.Second, "vmwriter to end", func() bool {
		return show(t, "cove-vmwriter.service", "SubState") != "running"
	})
	r := inside(t, "qemu-img", "check", "/var/lib/cove/vms/vmwriter/disk1.qcow2")
	if (r.Code != 0 && r.Code != 3) || strings.Contains(r.Stdout+r.Stderr, "ERROR") {
		t.Errorf("qemu-img check of the overlay after SIGKILL: exit %d (0: clean, 3: leaks only)\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestVMHealth: a VM's health is a probe of a guest port from the host:
// http = 80 through the user network's forward turns healthy once the
// guest's web server answers; tcp = 81, forwarded to a port nothing in
// the guest listens on, turns unhealthy after its retries (on_failure =
// "none": the VM keeps running); with on_failure = "restart" systemd
// restarts the VM (a new invocation).
func TestVMHealth(t *testing.T) {
	g := needGuest(t)
	for _, c := range []struct{ name, check, onFailure string }{
		{"vmhealthy", "http = 80\npath = \"/\"", "none"},
		{"vmsick", "tcp = 81", "none"},
		{"vmrestarted", "tcp = 81", "restart"},
	} {
		port := freePort(t)
		guestPort := strings.Fields(c.check)[2]
		cleanupWorkload(t, c.name)
		net := fmt.Sprintf("[vm.network]\nmode = \"user\"\nforward = [\"127.0.0.1:%d:%s/tcp\"]\n", port, guestPort)
		health := "[health]\n" + c.check + "\ninterval = \"1s\"\nretries = 2\non_failure = \"" + c.onFailure + "\"\n"
		mustCove(t, "run", "-d", vmSpec(t, g, c.name, "net", net, health))
	}
	first := show(t, "cove-vmrestarted.service", "InvocationID")
	for _, c := range []struct{ name, want string }{{"vmhealthy", "healthy"}, {"vmsick", "unhealthy"}} {
		eventually(t, 90*time.Second, c.name+" to be "+c.want, func() bool {
			return regexp.MustCompile(`(?m)^Health: +` + c.want + `$`).MatchString(cove(t, "status", c.name).Stdout)
		})
		if st := show(t, "cove-"+c.name+".service", "ActiveState"); st != "active" {
			t.Errorf("%s is %s, want active (on_failure = \"none\")", c.name, st)
		}
	}
	eventually(t, 90*time.Second, "vmrestarted (on_failure = \"restart\") to be restarted by systemd", func() bool {
		id := show(t, "cove-vmrestarted.service", "InvocationID")
		return id != first && id != "" && show(t, "cove-vmrestarted.service", "ActiveState") == "active"
	})
}

// TestVMHealthCommand: health.command of a VM runs in the guest through
// its QEMU guest agent (Debian's qemu-ga, on the port every VM has):
// healthy while the command exits 0, its output recorded; a check that
// hangs past its timeout is not started again beside itself (one hung
// process in the guest, however many intervals pass); unhealthy once it
// fails (on_failure = "none": the VM keeps running); with the agent gone,
// the probe fails saying that no agent answers.
func TestVMHealthCommand(t *testing.T) {
	g := needGuest(t)
	g.Initrd = g.AgentInitrd
	cleanupWorkload(t, "vmagent")
	health := `[health]
command = ["/bin/sh", "-c", "if test -e /tmp/hang; then sleep 1000; fi; test ! -e /tmp/sick && echo guest-fine-$((6*7))"]
interval = "2s"
timeout = "2s"
retries = 2
on_failure = "none"
`
	mustCove(t, "run", "-d", vmSpec(t, g, "vmagent", "agent", "", health))
	waitLog(t, "vmagent", vmguest.MarkerAgentUp, 90*time.Second)
	lastOutput := func(want string) func() bool {
		return func() bool {
			return strings.Contains(inside(t, "cat", "/run/cove/health/vmagent.json").Stdout, want)
		}
	}
	status := func(want string) func() bool {
		return func() bool {
			return regexp.MustCompile(`(?m)^Health: +` + want + `$`).MatchString(cove(t, "status", "vmagent").Stdout)
		}
	}
	console := func(line string) {
		insideStdin(t, line+"\n", coveBin, "console", "vmagent")
		waitLog(t, "vmagent", vmguest.MarkerRan+line, 30*time.Second)
	}
	eventually(t, 90*time.Second, "vmagent to be healthy with the command's output", func() bool {
		return status("healthy")() && lastOutput("guest-fine-42")()
	})
	console("touch /tmp/hang")
	eventually(t, 60*time.Second, "a hung check to hold back the next", lastOutput("still runs, so no other is started"))
	time.Sleep(5 * time.Second) // more intervals
	console("echo HUNG=$(ps | grep -c '[ ]sleep 1000$')")
	if logs := cove(t, "logs", "vmagent").Stdout; !strings.Contains(logs, "HUNG=1") {
		t.Errorf("hung checks in the guest, want 1:\n%s", logs)
	}
	console("rm /tmp/hang; killall sleep; touch /tmp/sick")
	eventually(t, 60*time.Second, "vmagent to be unhealthy", func() bool { return status("unhealthy")() && lastOutput("exit status 1")() })
	if st := show(t, "cove-vmagent.service", "ActiveState"); st != "active" {
		t.Errorf("vmagent is %s, want active (on_failure = \"none\")", st)
	}
	console("rm /tmp/sick; killall qemu-ga")
	eventually(t, 60*time.Second, "the probe to say no agent answers", lastOutput("no guest agent answers"))
}
