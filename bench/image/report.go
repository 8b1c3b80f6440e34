package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// bench is one command that is timed.
type bench struct {
	Key     string    `json:"key"`
	Name    string    `json:"name"`
	Argv    []string  `json:"argv"`            // run inside the sandbox
	Env     []string  `json:"env,omitempty"`   // added to the environment
	Reset   string    `json:"reset,omitempty"` // sh -c inside before each sample, untimed
	Samples []float64 `json:"samples_ms"`
	benchbox.Stats
	phases bool // time cove pull's progress lines too
}

// imageInfo describes a test image.
type imageInfo struct {
	Ref               string `json:"ref"`
	Layers            int    `json:"layers"`
	CompressedBytes   int64  `json:"compressed_bytes"`
	UncompressedBytes int64  `json:"uncompressed_bytes,omitempty"` // counted for A only
}

// report is the whole result, as printed with -json.
type report struct {
	Date          string             `json:"date"`
	Invocation    string             `json:"invocation"`
	Rounds        int                `json:"rounds"`
	Warmup        int                `json:"warmup_rounds"`
	Machine       map[string]string  `json:"machine"`
	Prefix        []string           `json:"nsenter_prefix"`
	Work          string             `json:"work_dir"`
	ImageA        imageInfo          `json:"image_a"`
	ImageB        imageInfo          `json:"image_b"`
	Pull          []*bench           `json:"pull"`
	Phases        []phase            `json:"cove_pull_phases"`
	Run           []*bench           `json:"run"`
	Leftovers     int                `json:"run_leftovers"`        // entries left in /var/lib/cove/containers
	Writer        bool               `json:"run_writer,omitempty"` // -writer: a process wrote beside the layers
	Push          []*bench           `json:"push"`
	PushElsewhere []*bench           `json:"push_elsewhere"`
	Disk          *disk              `json:"disk"`
	Ratios        map[string]float64 `json:"ratios"`
	PodmanSetup   string             `json:"podman_setup,omitempty"`
	PodmanSkip    string             `json:"podman_skipped,omitempty"`
	PodmanRunSkip string             `json:"podman_run_skipped,omitempty"`
	SkopeoSkip    string             `json:"skopeo_skipped,omitempty"`
}

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds, per part, interleaved round-robin; %s UTC\n\n",
		rep.Rounds, rep.Warmup, strings.TrimSuffix(strings.Replace(rep.Date, "T", " ", 1), "Z"))
	printImages(w, rep)
	fmt.Fprintln(w, "\nPull (image A, each command into an empty store):")
	fmt.Fprintln(w)
	printTimes(w, rep, rep.Pull)
	fmt.Fprintln(w)
	printPullRatios(w, rep)
	fmt.Fprintln(w)
	printPhases(w, rep)
	fmt.Fprintln(w, "\nRun (`/bin/true` in a container of image A, no network):")
	fmt.Fprintln(w)
	printTimes(w, rep, rep.Run)
	fmt.Fprintln(w)
	printRunRatios(w, rep)
	fmt.Fprintln(w, "\nPush (image A from the store to an empty repository of the registry it is in: its layers can be mounted):")
	fmt.Fprintln(w)
	printTimes(w, rep, rep.Push)
	fmt.Fprintln(w)
	printPushRatios(w, rep, "push")
	fmt.Fprintln(w, "\nPush elsewhere (image A from the store to an empty repository of another registry: every layer is uploaded):")
	fmt.Fprintln(w)
	printTimes(w, rep, rep.PushElsewhere)
	fmt.Fprintln(w)
	printPushRatios(w, rep, "push elsewhere")
	fmt.Fprintln(w, "\nDisk (cove's store; each row starts from an empty store):")
	fmt.Fprintln(w)
	printDisk(w, rep)
	fmt.Fprintln(w)
	printNotes(w, rep)
}

// printImages describes the test images.
func printImages(w io.Writer, rep *report) {
	a, b := rep.ImageA, rep.ImageB
	fmt.Fprintf(w, "Images: A = `%s`, %d layers (busybox, then random data), %s compressed, %s as tar; "+
		"B = `%s`, %d layers (A's two bottom ones and its own), %s compressed.\n",
		a.Ref, a.Layers, mib(a.CompressedBytes), mib(a.UncompressedBytes), b.Ref, b.Layers, mib(b.CompressedBytes))
}

// printTimes writes a table of times.
func printTimes(w io.Writer, rep *report, bs []*bench) {
	fmt.Fprintln(w, "| | command (inside the sandbox) | median | p90 | min |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, b := range bs {
		fmt.Fprintf(w, "| %s %s | `%s` | %s | %s | %s |\n", b.Key, b.Name,
			display(rep, append(append([]string(nil), b.Env...), b.Argv...)), ms(b.Median), ms(b.P90), ms(b.Min))
	}
}

// printPushRatios writes the ratios of the push part named part.
func printPushRatios(w io.Writer, rep *report, part string) {
	fmt.Fprintln(w, "| ratio | of medians | of p90s |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, k := range []string{"cove/skopeo", "cove/podman"} {
		if r, ok := rep.Ratios[part+" "+k]; ok {
			fmt.Fprintf(w, "| %s | **%.2f×** | %.2f× |\n", k, r, rep.Ratios[part+" "+k+" p90"])
		}
	}
}

// printPullRatios writes the pull ratios and the target.
func printPullRatios(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| ratio | of medians | of p90s | target |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	if r, ok := rep.Ratios["pull cove/skopeo"]; ok {
		fmt.Fprintf(w, "| cove / skopeo | **%.2f×** | %.2f× | ≤ 1.2×: %s |\n", r, rep.Ratios["pull cove/skopeo p90"], verdict(r <= 1.2))
	}
	if r, ok := rep.Ratios["pull cove/podman"]; ok {
		fmt.Fprintf(w, "| cove / podman | **%.2f×** | %.2f× | — |\n", r, rep.Ratios["pull cove/podman p90"])
	}
}

// printPhases writes where cove pull's time went.
func printPhases(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| phase of cove pull (from its progress lines) | n | median | p90 | max |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, p := range rep.Phases {
		mx := 0.0
		for _, v := range p.Samples {
			mx = max(mx, v)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", p.Name, len(p.Samples), ms(p.Median), ms(p.P90), ms(mx))
	}
}
