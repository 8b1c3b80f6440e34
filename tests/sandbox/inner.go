//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// systemdPath is the system manager booted inside the sandbox.
const systemdPath = "/usr/lib/systemd/systemd"

// hostTmpStage is where the inner step keeps the host's /tmp visible, after
// mounting the private /tmp, until the bind mounts are done. It is unmounted
// before systemd starts.
const hostTmpStage = "/run/.cove-host-tmp"

// fixedMasks are the units masked in every sandbox: everything that would
// touch the shared kernel, devices or host files, and servers a machine image
// may enable. Names with glob characters are matched against the installed
// unit files.
var fixedMasks = []string{
	// From the verified recipe.
	"systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
	"proc-sys-fs-binfmt_misc.mount", "systemd-modules-load.service",
	"systemd-sysctl.service", "systemd-remount-fs.service",
	"systemd-sysusers.service", "systemd-tmpfiles-setup.service",
	"systemd-tmpfiles-setup-dev.service", "systemd-tmpfiles-clean.timer",
	"systemd-update-utmp.service", "systemd-journal-flush.service",
	"systemd-udevd.service", "systemd-udev-trigger.service",
	"sys-kernel-debug.mount", "sys-kernel-tracing.mount",
	"sys-kernel-config.mount", "sys-fs-fuse-connections.mount",
	"dev-hugepages.mount", "dev-mqueue.mount", "systemd-random-seed.service",
	"systemd-timesyncd.service", "getty.target", "console-getty.service",
	"systemd-ask-password-console.path", "systemd-ask-password-wall.path",
	"systemd-logind.service", "cryptsetup.target", "tmp.mount",
	// More that touch the kernel, devices or host files.
	"systemd-update-utmp-runlevel.service", "systemd-journald-audit.socket",
	"systemd-firstboot.service", "systemd-machine-id-commit.service",
	"systemd-repart.service", "systemd-pcrphase*.service",
	"systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
	"systemd-hwdb-update.service", "ldconfig.service",
	"systemd-pstore.service", "systemd-boot-update.service",
	"systemd-quotacheck.service", "quotaon.service",
	"systemd-fsck-root.service", "systemd-fsck@.service",
	"systemd-growfs-root.service", "systemd-backlight@.service",
	"systemd-rfkill.service", "systemd-rfkill.socket",
	"systemd-hibernate-resume@.service", "rc-local.service",
	"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
	"apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer",
	"dpkg-db-backup.timer", "logrotate.timer",
	// Servers a machine image may enable.
	"systemd-networkd.service", "systemd-networkd.socket",
	"systemd-networkd-wait-online.service", "systemd-resolved.service",
	"cron.service", "ssh.service", "ssh.socket", "postgresql*",
	"redis-server*.service", "nginx.service", "memcached.service",
	"docker.service", "docker.socket", "containerd.service", "podman*",
}

// neverMask are units a sandbox needs even when the host enables them.
func neverMask(unit string) bool {
	switch unit {
	case "dbus.service", "dbus.socket", "systemd-journald.service",
		"systemd-journald.socket", "systemd-journald-dev-log.socket",
		"systemd-journald@.service", "systemd-journald@.socket",
		"systemd-machined.service", "sandbox.target":
		return true
	}
	return false
}

// unitDirs are the host's unit directories, searched to expand glob masks.
var unitDirs = []string{
	"/etc/systemd/system", "/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system", "/lib/systemd/system",
}

// masks computes the units to mask: the fixed list (globs expanded), every
// unit the host enables in /etc/systemd/system/*.wants and *.requires, and
// every SysV script started in a host runlevel.
func masks() []string {
	set := map[string]bool{}
	add := func(u string) {
		if u != "" && !neverMask(u) {
			set[u] = true
		}
	}
	for _, m := range fixedMasks {
		if !strings.ContainsAny(m, "*?[") {
			add(m)
			continue
		}
		for _, d := range unitDirs {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if ok, _ := filepath.Match(m, e.Name()); ok {
					add(e.Name())
				}
			}
		}
	}
	for _, pat := range []string{"/etc/systemd/system/*.wants/*", "/etc/systemd/system/*.requires/*"} {
		ms, _ := filepath.Glob(pat)
		for _, m := range ms {
			add(filepath.Base(m))
		}
	}
	for _, rl := range []string{"2", "3", "4", "5"} {
		ms, _ := filepath.Glob("/etc/rc" + rl + ".d/S*")
		for _, m := range ms {
			name := strings.TrimLeft(strings.TrimPrefix(filepath.Base(m), "S"), "0123456789")
			add(name + ".service")
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// overlayMount is one private writable overlay over a host directory.
type overlayMount struct {
	target, upper, work string
}

// bindMount is one bind mount made before systemd starts.
type bindMount struct {
	target, source string // source as seen inside (host /tmp paths staged)
	dir            bool   // source is a directory
}

// innerParams is everything the inner script needs.
type innerParams struct {
	hierarchies []hierarchy
	masks       []string
	wants       []string
	overlays    []overlayMount
	binds       []bindMount
	console     string // pty slave to bind over /dev/console, or ""
	privateNet  bool   // in a network namespace of its own
}

// innerScript renders the inner step: run by /bin/sh as PID 1 of the new
// namespaces, it prepares the mount namespace and execs systemd.
func innerScript(p innerParams) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/sh")
	w("# Inner step of a cove test sandbox (generated by tests/sandbox).")
	w("set -eu")
	w("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	w("mount -t proc proc /proc")
	w("# The kernel is shared with the host: keep its tunables read-only.")
	w("mount --bind /proc/sys /proc/sys")
	if p.privateNet {
		w("# Own network namespace: its sysctls are its own, keep them writable.")
		w("mount --bind /proc/sys/net /proc/sys/net")
		w("ip link set lo up")
	}
	w("mount -o remount,bind,ro /proc/sys")
	w("# Cgroup hierarchies rooted at the namespace, under a read-only /sys.")
	w("umount -R %s", cgroupRoot)
	w("mount --bind /sys /sys")
	w("mount -o remount,bind,ro /sys")
	w("mount -t tmpfs -o mode=755 tmpfs %s", cgroupRoot)
	hs := append([]hierarchy(nil), p.hierarchies...)
	sort.Slice(hs, func(i, j int) bool { return hs[i].mountPoint < hs[j].mountPoint })
	for _, h := range hs {
		w("mkdir -p %s", shq(h.mountPoint))
		if h.mountOpts != "" {
			w("mount -t %s -o %s %s %s", h.fsType, shq(h.mountOpts), h.fsType, shq(h.mountPoint))
		} else {
			w("mount -t %s %s %s", h.fsType, h.fsType, shq(h.mountPoint))
		}
	}
	w("# Private /run and /tmp (else the sandbox's tmpfiles would clean the host's /tmp).")
	w("mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run")
	w("mkdir -p %s", hostTmpStage)
	w("mount --bind /tmp %s", hostTmpStage)
	w("mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp")
	w("mkdir -p /run/systemd/system")
	w("cat > /run/systemd/system/sandbox.target <<'EOF'")
	w("[Unit]")
	w("Description=cove test sandbox")
	w("Requires=dbus.socket systemd-journald.socket")
	w("After=dbus.socket systemd-journald.socket")
	w("Wants=dbus.service systemd-journald.service")
	for _, u := range p.wants {
		w("Wants=%s", u)
		w("After=%s", u)
	}
	w("AllowIsolate=yes")
	w("EOF")
	w("for u in \\")
	for _, m := range p.masks {
		w("\t%s \\", shq(m))
	}
	w("\t; do ln -sf /dev/null \"/run/systemd/system/$u\"; done")
	for _, o := range p.overlays {
		w("mount -t overlay overlay -o %s %s",
			shq("lowerdir="+o.target+",upperdir="+o.upper+",workdir="+o.work), shq(o.target))
	}
	for _, bm := range p.binds {
		t := shq(bm.target)
		if bm.dir {
			w("[ -e %s ] || mkdir -p %s", t, t)
		} else {
			w("[ -e %s ] || { mkdir -p %s && : > %s; }", t, shq(filepath.Dir(bm.target)), t)
		}
		w("mount --bind %s %s", shq(bm.source), t)
	}
	if p.console != "" {
		w("# systemd logs to /dev/console: give it the harness's pty, not the host's console.")
		w("mount --bind %s /dev/console", shq(p.console))
	}
	w("umount %s", hostTmpStage)
	w("rmdir %s", hostTmpStage)
	w("export container=other")
	w("exec %s --system --unit=sandbox.target --log-target=console --log-level=notice", systemdPath)
	return b.String()
}

// shq quotes s for the POSIX shell.
func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=@:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
