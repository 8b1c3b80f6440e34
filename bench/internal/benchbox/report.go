package benchbox

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Progress writes a line about what the benchmark is doing to stderr.
func Progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s\n", msg)
}

// FirstLine returns s up to its first line break, shortened.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// MachineLine renders m as "k: v; k: v" in key order.
func MachineLine(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+": "+m[k])
	}
	return strings.Join(parts, "; ")
}

// Invocation is the command line that ran benchmark prog, as the reports
// quote it: "go run ./bench/PROG ARGS".
func Invocation(prog string) string {
	return "go run ./bench/" + prog + " " + strings.Join(os.Args[1:], " ")
}

// WriteJSON writes v to w as indented JSON (the benchmarks' -json output).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
