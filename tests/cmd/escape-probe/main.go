// Command escape-probe makes, in a container, the system calls a
// container must not be able to make, and prints one line per call:
// "NAME ALLOWED" when it succeeds, else "NAME ERRNO" (e.g. "bpf EPERM":
// the default seccomp filter's answer, or a missing capability's). No
// call changes anything, allowed or not, also outside a container: reboot
// and ptrace are asked what the kernel refuses after its permission check
// (bad magic numbers: EINVAL; a process not traced: ESRCH), the module
// image and the file handle are empty, the key and the map die with the
// process. It is built statically into the test rootfs.
package main

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	for _, p := range []struct {
		name string
		call func() error
	}{
		{"bpf", bpfMapCreate},
		{"add_key", func() error {
			_, err := unix.AddKey("user", "cove-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
			return err
		}},
		{"keyctl", func() error { _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); return err }},
		{"ptrace", func() error { return syscallErr(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(unix.Getpid()), 0) }},
		{"init_module", func() error { return unix.InitModule([]byte{0}, "") }},
		{"finit_module", func() error { return unix.FinitModule(0, "", 0) }},
		{"reboot", func() error { return syscallErr(unix.SYS_REBOOT, 0, 0, unix.LINUX_REBOOT_CMD_CAD_OFF) }},
		{"open_by_handle_at", openByHandle},
	} {
		err := p.call()
		var errno unix.Errno
		switch {
		case err == nil:
			fmt.Println(p.name, "ALLOWED")
		case errors.As(err, &errno):
			fmt.Println(p.name, unix.ErrnoName(errno))
		default:
			fmt.Println(p.name, err)
		}
	}
}

// syscallErr makes system call trap with a1…a3 and returns its error.
func syscallErr(trap, a1, a2, a3 uintptr) error {
	if _, _, e := unix.Syscall(trap, a1, a2, a3); e != 0 {
		return e
	}
	return nil
}

// bpfMapCreate asks for a one-entry array map.
func bpfMapCreate() error {
	attr := [5]uint32{2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0}
	fd, _, e := unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// openByHandle opens an all-zero file handle on the root's file system.
func openByHandle() error {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fd, err := unix.OpenByHandleAt(root, unix.NewFileHandle(1, make([]byte, 8)), unix.O_RDONLY)
	if err == nil {
		unix.Close(fd)
	}
	return err
}
