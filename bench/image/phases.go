package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// The phases of a cove pull, told apart by the progress lines it prints
// (one whenever a layer changes state) as they arrive on a pipe.
const (
	phaseResolve = "exec → layer list (Go start, store opened, manifest and config fetched)"
	phaseLayers  = "layer list → every layer done (3 at a time: download, unpack, verify, syncfs, rename)"
	phaseCommit  = "every layer done → exit (record and name written durably)"
	phaseFetch   = "per layer: downloading → last byte arrived (download with streamed gunzip and unpack)"
	phaseTail    = "per layer: last byte → done (end of unpack, diffID check, syncfs, rename, fsync)"
)

// phaseOrder is the order the phases are reported in.
var phaseOrder = []string{phaseResolve, phaseLayers, phaseCommit, phaseFetch, phaseTail}

// stamp is one line of output and when it arrived, in ms after the exec.
type stamp struct {
	at   float64
	line string
}

// timeLines runs argv in the sandbox like benchbox.TimeOnce, but with
// its stdout on a pipe, and returns the wall-clock time and every line
// with its arrival time.
func timeLines(ctx context.Context, sb *sandbox.Sandbox, argv []string) (float64, []stamp, error) {
	ctx, cancel := context.WithTimeout(ctx, benchbox.CmdTimeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	var lines []stamp
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, stamp{benchbox.Millis(time.Since(start)), sc.Text()})
	}
	err = cmd.Wait()
	total := benchbox.Millis(time.Since(start))
	if err != nil {
		_, err2 := benchbox.Inside(ctx, sb, benchbox.CmdTimeout, nil, argv...)
		return 0, nil, fmt.Errorf("%v; again: %v", err, err2)
	}
	return total, lines, nil
}

// layerEvents maps each layer (its digest's first 12 hex digits) to the
// time it entered each state.
func layerEvents(lines []stamp) map[string]map[string]float64 {
	ev := map[string]map[string]float64{}
	for _, s := range lines {
		f := strings.Fields(s.line)
		if len(f) < 2 || len(f[0]) != 13 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		id := strings.TrimSuffix(f[0], ":")
		if ev[id] == nil {
			ev[id] = map[string]float64{}
		}
		ev[id][f[1]] = s.at
	}
	return ev
}

// phasesOf splits one pull of total ms into the phases; the per-layer
// phases are lists (one value per layer).
func phasesOf(lines []stamp, total float64) (wall map[string]float64, perLayer map[string][]float64, err error) {
	ev := layerEvents(lines)
	if len(ev) == 0 {
		var text []string
		for _, s := range lines {
			text = append(text, s.line)
		}
		return nil, nil, fmt.Errorf("cove pull printed no layer progress: %q", text)
	}
	first, lastDone := total, 0.0
	perLayer = map[string][]float64{}
	for id, st := range ev {
		w, ok1 := st["waiting"]
		d, ok2 := st["downloading"]
		x, ok3 := st["extracting"]
		dn, ok4 := st["done"]
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, nil, fmt.Errorf("layer %s: states %v, want waiting, downloading, extracting, done", id, st)
		}
		first, lastDone = min(first, w), max(lastDone, dn)
		perLayer[phaseFetch] = append(perLayer[phaseFetch], x-d)
		perLayer[phaseTail] = append(perLayer[phaseTail], dn-x)
	}
	wall = map[string]float64{
		phaseResolve: first,
		phaseLayers:  lastDone - first,
		phaseCommit:  total - lastDone,
	}
	return wall, perLayer, nil
}

// phaseSamples collects cove's phases over the measured rounds.
type phaseSamples struct {
	samples map[string][]float64
}

func newPhaseSamples() *phaseSamples {
	return &phaseSamples{samples: map[string][]float64{}}
}

// add splits one pull into its phases.
func (p *phaseSamples) add(lines []stamp, total float64) error {
	wall, perLayer, err := phasesOf(lines, total)
	if err != nil {
		return err
	}
	for k, v := range wall {
		p.samples[k] = append(p.samples[k], v)
	}
	for k, vs := range perLayer {
		p.samples[k] = append(p.samples[k], vs...)
	}
	return nil
}

// phase is one phase's statistics, as reported.
type phase struct {
	Name    string    `json:"name"`
	Samples []float64 `json:"samples_ms"`
	benchbox.Stats
}

// summary lists the phases in phaseOrder with their statistics.
func (p *phaseSamples) summary() []phase {
	var out []phase
	for _, k := range phaseOrder {
		out = append(out, phase{Name: k, Samples: p.samples[k], Stats: benchbox.Summarize(p.samples[k])})
	}
	return out
}
