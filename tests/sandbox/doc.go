// Package sandbox boots a real, private systemd for integration tests.
//
// The machines cove is tested on run a non-systemd PID 1, but have systemd
// installed. Boot starts /usr/lib/systemd/systemd as PID 1 of fresh PID,
// mount, cgroup and UTS namespaces, placed in child cgroups of the test
// process's own cgroups, with a private /run and /tmp, a minimal boot target
// (D-Bus and journald only) and every unit masked that would touch the host
// (see docs/systemd-sandbox.md in the shared docs for the verified recipe).
// Tests then run commands inside with Sandbox.Command or Sandbox.Run, and stop
// it with Sandbox.Shutdown, which removes everything Boot created.
//
// Host directories listed in Options.Overlays get a private writable overlay,
// so tests may write /etc/cove, /var/lib/cove or unit files without changing
// the host; the overlay's upper directories live in Options.StateDir, which a
// later Boot may reuse to model a reboot.
//
// The root filesystem is otherwise shared with the host, except /run and
// /tmp, which are private: anything the sandbox must see (a rootfs, a state
// directory, a binary built by the test) belongs under /var/tmp (see TempDir),
// or is bind-mounted in with Options.Binds, which also accepts sources under
// the host's /tmp, such as the test binary itself (os.Executable) or
// t.TempDir() contents.
//
// Rootfs builds a small busybox root directory for containers.
//
// The package is Linux-only and needs root; Usable tells whether a sandbox
// can be booted on the current machine.
package sandbox
