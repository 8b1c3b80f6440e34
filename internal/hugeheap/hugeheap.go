// Package hugeheap asks the kernel to back the Go heap of the process
// that links it with transparent huge pages, from its initialisation on.
//
// cove's binaries are started several times per container start (the
// client, cove-launch, cove-init), and each touches one to two MB of heap
// before it does any work: a few hundred page faults, each 10–30 µs on the
// virtual machines cove is measured on (docs/benchmarks.md). With the
// heap's mapping advised MADV_HUGEPAGE, and the 2 MB regions the runtime
// has already touched collapsed into huge pages (MADV_COLLAPSE, Linux
// 6.1), those faults become one per 2 MB.
//
// The advice covers the heap as the runtime has mapped it when this
// package is initialised. The runtime maps its heap in 4 MB chunks
// (mmap MAP_FIXED over reserved address space), so a chunk it maps later
// (when the heap's random start was near a chunk's end, or the heap grows
// past it) gets small pages: the advice is lost, not wrong.
//
// It is advice only: where transparent huge pages are off ("never"), the
// kernel is older, a huge page cannot be had, or the cgroup cannot be
// charged 2 MB, the kernel keeps small pages and the process runs as
// before. The price is memory rounded up to 2 MB per region touched:
// about 1.5–3 MB more resident per process. Import it (blank) in a main
// package: it imports only syscall, so Go's initialisation order runs it
// right after the runtime and a few standard packages, before the
// packages that allocate at their init (tests/layout checks cove's
// binaries).
package hugeheap

import (
	"syscall"
	"unsafe"
)

const (
	// span is how much address space from just below the first heap
	// object is advised: a heap arena's size (heapArenaBytes on 64-bit
	// Linux). The heap starts at a random page (Go 1.26) and grows
	// upward, across an arena's end too.
	span      = 64 << 20
	pageBytes = 4096    // the small page this package knows the huge page of
	hugeBytes = 2 << 20 // a PMD-mapped huge page over 4 kB pages
	// The madvise(2) advice values (golang.org/x/sys/unix names them too;
	// this package imports only syscall, to be initialised early).
	madvHugepage = 14
	madvCollapse = 25
)

var probe *[16]byte // a heap object: where the heap is

func init() {
	if syscall.Getpagesize() != pageBytes {
		return
	}
	probe = new([16]byte)
	// The region before the probe's holds the runtime's own first
	// allocations when the heap began near its end.
	start := uintptr(unsafe.Pointer(probe))&^(hugeBytes-1) - hugeBytes
	advise(start, span, madvHugepage) // ENOMEM for the unmapped parts; the mapped ones are advised
	for r := start; r < start+span; r += hugeBytes {
		if touched(r) {
			advise(r, hugeBytes, madvCollapse)
		}
	}
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
