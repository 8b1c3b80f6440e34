package image

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// pullProgress prints a pull's events: on a terminal one line per layer,
// redrawn in place with bytes and rate; otherwise a plain line whenever a
// layer changes state.
type pullProgress struct {
	w       io.Writer
	tty     bool
	order   []string // layer digests in first-seen order
	lines   map[string]string
	started map[string]time.Time
}

// NewProgressPrinter returns a PullOptions.Progress that prints to w: on
// a terminal one line per layer, redrawn in place with bytes and rate;
// otherwise a plain line whenever a layer changes state.
func NewProgressPrinter(w io.Writer) func(Progress) {
	return newPullProgress(w).show
}

func newPullProgress(w io.Writer) *pullProgress {
	f, ok := w.(*os.File)
	return &pullProgress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), lines: map[string]string{}, started: map[string]time.Time{}}
}

// show handles one event.
func (p *pullProgress) show(ev Progress) {
	id := ev.Digest.Hex[:12]
	old, seen := p.lines[id]
	if !seen {
		p.order = append(p.order, id)
		p.started[id] = time.Now()
	}
	line := fmt.Sprintf("%s: %s", id, ev.State)
	if ev.State == Downloading || ev.State == Uploading {
		line += " " + p.rate(id, ev)
	}
	p.lines[id] = line
	switch {
	case p.tty:
		p.redraw(seen)
	case !strings.HasPrefix(old, fmt.Sprintf("%s: %s", id, ev.State)):
		fmt.Fprintf(p.w, "%s: %s %s\n", id, ev.State, HumanSize(ev.Total))
	}
}

// rate renders done/total and the average rate since the layer started.
func (p *pullProgress) rate(id string, ev Progress) string {
	secs := time.Since(p.started[id]).Seconds()
	rate := ""
	if secs > 0 {
		rate = fmt.Sprintf(" %s/s", HumanSize(int64(float64(ev.Done)/secs)))
	}
	return fmt.Sprintf("%s / %s%s", HumanSize(ev.Done), HumanSize(ev.Total), rate)
}

// redraw rewrites the block of layer lines (moving up over the old block).
func (p *pullProgress) redraw(seen bool) {
	up := len(p.order)
	if !seen {
		up--
	}
	if up > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", up)
	}
	for _, id := range p.order {
		fmt.Fprintf(p.w, "\x1b[2K%s\n", p.lines[id])
	}
}

// HumanSize renders bytes in the largest 1024-based unit.
func HumanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f, i = f/1024, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
