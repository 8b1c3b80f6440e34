// Package hugeheap asks the kernel to back the Go heap of the process
// that links it with transparent huge pages, from its initialisation on.
// cove links it; cove-launch and cove-init do not (they run at every
// container start in the container's cgroup, under its memory limit, and
// the launcher's console relay lives as long as the container:
// tests/layout checks both; cove itself runs there only for a VM's
// stages and a network's release at a stop).
//
// The client is started at every container start and touches one to two
// MB of heap before it has done anything: a few hundred page faults,
// each 10–30 µs on the virtual machines cove is measured on
// (docs/benchmarks.md). With the heap's mapping advised MADV_HUGEPAGE,
// and the 2 MB regions the runtime has already touched collapsed into
// huge pages (MADV_COLLAPSE, Linux 6.1), those faults become one per 2 MB.
//
// The advice covers the heap as the runtime has mapped it when this
// package is initialised: the runtime maps its heap in 4 MB chunks (mmap
// MAP_FIXED over address space it reserved), and a chunk it maps later
// gets small pages (where transparent huge pages are "madvise", the
// default), as does reserved space the advice reached before it was
// mapped. So a long-lived cove process (the API helper, cove logs -f)
// holds at most those chunks in huge pages: a few MB more resident.
//
// Nothing is done unless transparent huge pages are "always" or
// "madvise" (MADV_COLLAPSE would ignore "never") and pages are 4 kB; where
// no huge page can be had the kernel keeps small pages. Import it
// (blank) in a main package: it imports only syscall, so Go's
// initialisation order runs it right after the runtime and a few
// standard packages, before the packages that allocate at their init
// (tests/layout checks cove).
package hugeheap

import (
	"syscall"
	"unsafe"
)

const (
	// span is how much address space from the probe's 2 MB region, and
	// the one below, is advised: a heap arena's size (heapArenaBytes on
	// 64-bit Linux). The heap starts at a random page of its first
	// chunk (Go 1.26) and grows upward, across an arena's end too.
	span      = 64 << 20
	pageBytes = 4096    // the small page this package knows the huge page of
	hugeBytes = 2 << 20 // a PMD-mapped huge page over 4 kB pages
	// madvCollapse is MADV_COLLAPSE (syscall has no name for it; this
	// package imports only syscall, to be initialised early).
	madvCollapse = 25
	// thpMode is where the kernel says whether transparent huge pages
	// are on: "always [madvise] never", the bracketed one in force.
	thpMode = "/sys/kernel/mm/transparent_hugepage/enabled"
)

// probe is a heap object (a package variable's target escapes): where
// the heap is, for init and for the test.
var probe *[16]byte

func init() {
	if syscall.Getpagesize() != pageBytes || !thpOn() {
		return
	}
	probe = new([16]byte)
	// The region below the probe's holds the runtime's own first
	// allocations when the heap began near its end.
	start := uintptr(unsafe.Pointer(probe))&^(hugeBytes-1) - hugeBytes
	advise(start, span, syscall.MADV_HUGEPAGE) // ENOMEM for the unmapped parts; the mapped ones are advised
	for r := start; r < start+span; r += hugeBytes {
		if touched(r) {
			advise(r, hugeBytes, madvCollapse)
		}
	}
}

// thpOn reports whether transparent huge pages are "always" or
// "madvise" (read with syscall alone: see madvCollapse).
func thpOn() bool {
	fd, err := syscall.Open(thpMode, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var b [64]byte
	n, err := syscall.Read(fd, b[:])
	if err != nil || n <= 0 {
		return false
	}
	mode := string(b[:n])
	return contains(mode, "[always]") || contains(mode, "[madvise]")
}

// contains is strings.Contains, which this package does not import.
func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// advise is madvise(2) on [addr, addr+n); its error is ignored: the
// advice is an optimisation.
func advise(addr, n, advice uintptr) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, n, advice)
}

// touched reports whether any page of the huge-page region at addr is
// resident (mincore(2)).
func touched(addr uintptr) bool {
	var vec [hugeBytes / pageBytes]byte
	_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, addr, hugeBytes, uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return false // not mapped
	}
	for _, v := range vec {
		if v&1 != 0 {
			return true
		}
	}
	return false
}
