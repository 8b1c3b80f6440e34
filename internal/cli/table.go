package cli

import (
	"bufio"
	"io"
	"text/tabwriter"
)

// table writes aligned columns (cells separated by tabs) to its writer
// in one go at Flush: a tabwriter writes each cell and its padding apart,
// and each write to a terminal or a pipe is a system call (for cove ps
// of 1000 workloads, 8000 of them: a third of its time).
type table struct {
	*tabwriter.Writer
	buf *bufio.Writer
}

// newTable is a table on w whose columns are at least padding apart.
func newTable(w io.Writer, padding int) *table {
	buf := bufio.NewWriterSize(w, 64<<10)
	return &table{Writer: tabwriter.NewWriter(buf, 0, 4, padding, ' ', 0), buf: buf}
}

// Flush aligns what was written and writes it out.
func (t *table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	return t.buf.Flush()
}
