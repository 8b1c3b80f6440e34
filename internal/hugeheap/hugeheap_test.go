package hugeheap

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestArenaAdvised checks what init did in this test binary: the mapping
// that holds the probe, a heap object, carries the huge-page advice
// (VmFlags "hg" in /proc/self/smaps). Its huge pages (AnonHugePages) are
// logged: whether the kernel had one to give is the machine's state.
func TestArenaAdvised(t *testing.T) {
	if syscall.Getpagesize() != pageBytes || !thpOn() {
		t.Skip("transparent huge pages are off here, or pages are not 4 kB: init does nothing")
	}
	flags, huge := mappingOf(t, uintptr(unsafe.Pointer(probe)))
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the heap's mapping lacks MADV_HUGEPAGE: VmFlags %q", flags)
	}
	t.Logf("the heap's mapping: VmFlags %s; AnonHugePages %s", flags, huge)
}

// mappingOf returns the VmFlags and AnonHugePages of the mapping of
// /proc/self/smaps that holds addr.
func mappingOf(t *testing.T, addr uintptr) (flags, huge string) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if lo, hi, ok := mapSpan(line); ok {
			in = lo <= addr && addr < hi
			continue
		}
		switch k, v, _ := strings.Cut(line, ":"); {
		case in && k == "AnonHugePages":
			huge = strings.TrimSpace(v)
		case in && k == "VmFlags":
			return strings.TrimSpace(v), huge
		}
	}
	t.Fatalf("no mapping of /proc/self/smaps holds %#x", addr)
	return "", ""
}

// mapSpan parses the address range that starts a mapping's header line.
func mapSpan(line string) (lo, hi uintptr, ok bool) {
	r, _, _ := strings.Cut(line, " ")
	a, b, found := strings.Cut(r, "-")
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	if !found || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(x), uintptr(y), true
}

// TestTouched checks touched on a fresh mapping: no page resident, then
// one written.
func TestTouched(t *testing.T) {
	b, err := syscall.Mmap(-1, 0, 2*hugeBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	start := uintptr(unsafe.Pointer(&b[0]))
	region := (start + hugeBytes - 1) &^ (hugeBytes - 1) // the one whole aligned region in b
	if touched(region) {
		t.Fatal("touched: a fresh mapping's region reported resident")
	}
	b[region-start+5*pageBytes] = 1
	if !touched(region) {
		t.Fatal("touched: a region with a written page reported untouched")
	}
}

// TestContains checks contains on the kernel's three modes.
func TestContains(t *testing.T) {
	for mode, on := range map[string]bool{"always [madvise] never\n": true, "[always] madvise never\n": true, "always madvise [never]\n": false, "": false} {
		if got := contains(mode, "[always]") || contains(mode, "[madvise]"); got != on {
			t.Errorf("%q: on = %v, want %v", mode, got, on)
		}
	}
}
