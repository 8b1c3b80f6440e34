// Package seccomppolicy is a container's default seccomp filter as a
// go-seccomp-bpf policy: the one statement of what it denies. The
// launcher's inside stage loads it assembled at build time where
// isolate/inside has the table (amd64: seccomp_linux_amd64.go, checked
// against this policy by its test), and assembles it at start elsewhere,
// so that amd64 binaries do not link go-seccomp-bpf, whose architecture
// tables every Go start would initialise.
package seccomppolicy

import seccomp "github.com/elastic/go-seccomp-bpf"

// Denied fail with EPERM in a container under the default seccomp
// filter: kernel modules, kexec, reboot, clocks, keyrings, mounts and
// namespaces, tracing and other host-wide or escape-prone calls. This
// follows the calls Docker's default profile refuses.
var Denied = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mount", "move_mount", "move_pages",
	"name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev",
	"ptrace", "query_module", "quotactl", "reboot", "request_key", "setns",
	"settimeofday", "swapoff", "swapon", "sysfs", "_sysctl", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat",
}

// Policy is the default filter: allow everything but Denied.
func Policy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: Denied}},
	}
}
