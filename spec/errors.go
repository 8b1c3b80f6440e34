package spec

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a spec.
//
// Line and Col are 1-based (Col counts bytes, like the Go toolchain) and
// are 0 when the position is unknown: for specs built from flags, for
// values that are missing from the file, and for the workload name when it
// is passed as an argument.
type Error struct {
	File string // spec file; "" for specs built from flags
	Line int    // 1-based line, 0 if unknown
	Col  int    // 1-based byte column, 0 if unknown
	Key  string // dotted key, e.g. "container.rootfs", array elements as [N] from 1 ("vm.disk[2].path"); "" if not tied to a key
	Msg  string // what is wrong, and what is allowed
}

// Error formats e as "FILE:LINE:COL: KEY: MSG", leaving out the parts that
// are unknown (e.g. "KEY: MSG" for a spec built from flags).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a spec, in file order. Parse, Load and
// Validate return a non-empty Errors (never a nil or empty one) on failure.
// errors.As with a **Error target finds the first problem.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// sort orders es by file, line and column; problems without a position come
// first within their file, ties keep the order in which they were found.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
		)
	})
}

// err returns es as an error, or nil (untyped) when es is empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}
