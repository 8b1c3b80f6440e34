package main

import (
	"fmt"
	"strconv"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// generatorPhase: phase 1. With S specs in /etc/cove and with none
// (renamed to offDir), alternating which comes first in a round, it
// times the generator and the daemon-reload that runs it.
func (b *bench) generatorPhase() (*genPhase, error) {
	o := b.o
	benchbox.Progress(fmt.Sprintf("phase 1: %d specs in /etc/cove; generator and daemon-reload with %d and 0 specs, %d rounds", o.specs, o.specs, o.genN))
	if _, err := b.sh(fmt.Sprintf("mkdir -p /etc/cove && cp %s/*.toml /etc/cove/ && ls /etc/cove | grep -c toml", b.specs)); err != nil {
		return nil, err
	}
	g := b.newGenPhase()
	err := benchbox.Rounds(o.warmup, o.genN, false, func(round int, measure bool) error {
		// Alternate which state comes first in a round.
		for i := 0; i < 2; i++ {
			step := b.genEmpty
			if (round+i)%2 == 0 {
				step = b.genFull
			}
			if err := step(g, measure); err != nil {
				return err
			}
		}
		_, err := b.add(g.Floor, measure)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, s := range []*series{g.GenFull, g.GenEmpty, g.ReloadFull, g.ReloadEmpty, g.Floor} {
		summarize(s)
	}
	g.PerSpecMs = (g.GenFull.Median - g.GenEmpty.Median) / float64(o.specs)
	g.ReloadPerMs = (g.ReloadFull.Median - g.ReloadEmpty.Median) / float64(o.specs)
	// Leave no specs behind for phase 2.
	if _, err := b.sh("rm -rf /etc/cove " + offDir + " && systemctl daemon-reload"); err != nil {
		return nil, err
	}
	return g, nil
}

// newGenPhase lists phase 1's series.
func (b *bench) newGenPhase() *genPhase {
	n := strconv.Itoa(b.o.specs)
	return &genPhase{
		Specs:       b.o.specs,
		Rounds:      b.o.genN,
		GenFull:     &series{Name: "cove-generator, " + n + " specs", Argv: []string{b.box.Generator, genOut}},
		GenEmpty:    &series{Name: "cove-generator, 0 specs", Argv: []string{b.box.Generator, genOut}},
		ReloadFull:  &series{Name: "systemctl daemon-reload, " + n + " specs", Argv: []string{"systemctl", "daemon-reload"}},
		ReloadEmpty: &series{Name: "systemctl daemon-reload, 0 specs", Argv: []string{"systemctl", "daemon-reload"}},
		Floor:       &series{Name: "nsenter floor", Argv: []string{"/bin/true"}},
	}
}

// genFull times the generator and a daemon-reload with the specs in
// /etc/cove, and checks what they generated and loaded.
func (b *bench) genFull(g *genPhase, measure bool) error {
	if _, err := b.sh("test -d /etc/cove || mv " + offDir + " /etc/cove"); err != nil {
		return err
	}
	got, err := b.timeGenerator(g.GenFull, measure)
	if err != nil {
		return err
	}
	if got != b.o.specs {
		return fmt.Errorf("generator wrote %d services from %d specs", got, b.o.specs)
	}
	g.GeneratedOut = got
	if err := b.quiesce(); err != nil {
		return err
	}
	if _, err := b.add(g.ReloadFull, measure); err != nil {
		return err
	}
	if got, err := b.count("ls /run/systemd/generator | grep -c '^cove-.*\\.service$' || true"); err != nil || got != b.o.specs {
		return fmt.Errorf("daemon-reload generated %d of %d units (%v)", got, b.o.specs, err)
	}
	g.LoadedAfter, err = b.count("systemctl list-units --all --no-legend --plain 'cove-*' | wc -l")
	return err
}

// genEmpty times the generator and a daemon-reload without /etc/cove.
func (b *bench) genEmpty(g *genPhase, measure bool) error {
	if _, err := b.sh("test ! -d /etc/cove || mv /etc/cove " + offDir); err != nil {
		return err
	}
	got, err := b.timeGenerator(g.GenEmpty, measure)
	if err != nil {
		return err
	}
	if got != 0 {
		return fmt.Errorf("generator wrote %d services from no specs", got)
	}
	if err := b.quiesce(); err != nil {
		return err
	}
	_, err = b.add(g.ReloadEmpty, measure)
	return err
}
