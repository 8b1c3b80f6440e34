// Package mountinfo reads /proc/PID/mountinfo, the kernel's table of a
// mount namespace's mounts.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of a mountinfo file, with the octal escapes of its
// paths undone.
type Mount struct {
	Root       string   // the path inside the file system mounted here
	MountPoint string   // where it is mounted
	FSType     string   // e.g. "cgroup2", "overlay"
	Source     string   // e.g. a device, or "none"
	SuperOpts  []string // the file system's options, e.g. ["rw", "memory"] for a v1 cgroup
}

// Read parses the mountinfo file of the calling process.
func Read() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return Parse(string(b)), nil
}

// Parse reads the lines of a mountinfo file; malformed lines are skipped.
func Parse(text string) []Mount {
	var ms []Mount
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS…] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, p := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(p) < 3 {
			continue
		}
		ms = append(ms, Mount{Root: Unescape(f[3]), MountPoint: Unescape(f[4]),
			FSType: p[0], Source: Unescape(p[1]), SuperOpts: strings.Split(p[2], ",")})
	}
	return ms
}

// Unescape undoes the octal escapes of mountinfo fields (\040 for a
// space).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
