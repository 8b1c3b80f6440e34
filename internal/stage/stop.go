package stage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// stopStages is a container's stop stages (units' stopStages): ExecStop=
// "launch-stop --signal SIG --timeout D NAME" ends the main process of a
// stop asked for, or, run after the main process ended (by SIGKILL: the
// units' gate), does the post stage's work where the unit has none; the
// post stage "launch-stop --post [--network NET]... NAME" (ExecStopPost=)
// records how the run ended and, in a unit made before containers had a
// release unit (spec.ReleaseUnitName), releases the networks.
func stopStages(_ string, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet(launch.StopVerb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	post := fs.Bool("post", false, "the post stage: record how the run ended (and release the networks --network names)")
	var nets []string
	fs.Func("network", "with --post: a network the container leaves (repeatable)", func(n string) error {
		nets = append(nets, n)
		return nil
	})
	sig := fs.String("signal", "SIGTERM", "the stop signal")
	imageSig := fs.Bool(launch.StopImageSignal, false, "the STOPSIGNAL of the image the container runs, if it gives one, instead of --signal")
	timeout := fs.Duration("timeout", 10*time.Second, "the time the main process has before SIGKILL")
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v", launch.StopVerb, err)
	}
	if fs.NArg() != 1 {
		return usagef("%s: want one workload name", launch.StopVerb)
	}
	name, run := instance(fs.Arg(0)), outcome.RunOf(os.Getenv)
	if *post {
		return postStage(name, nets, run)
	}
	n, err := spec.ParseSignal(*sig)
	if err != nil {
		return usagef("%s: --signal: %v", launch.StopVerb, err)
	}
	if *imageSig && run.MainPID != 0 && run.Asked() {
		n = imageStopSignal(name, n, stderr)
	}
	return stopStage(name, run, unix.Signal(n), *timeout)
}

// imageStopSignal is the STOPSIGNAL of the image that container name
// runs (stored.RunningDigest), or def when the image gives none; one that
// cannot be read or parsed is said on stderr (the unit's journal), and
// def used.
func imageStopSignal(name string, def int, stderr io.Writer) int {
	digest := stored.RunningDigest(name)
	if digest == "" {
		return def
	}
	sig, err := recordedStopSignal(digest)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "cove: stop %s: the image's STOPSIGNAL: %v; sending %s\n", name, err, spec.SignalName(def))
	case sig != 0:
		return sig
	}
	return def
}

// recordedStopSignal is the STOPSIGNAL (0 for none) in the store's record
// of image digest.
func recordedStopSignal(digest string) (int, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return 0, fmt.Errorf("image digest %q: %w", digest, err)
	}
	root, err := hostconf.ImageStore(hostconf.Path)
	if err != nil {
		return 0, err
	}
	st, err := stored.Open(root, nil) // no registries: only a record is read
	if err != nil {
		return 0, err
	}
	rec, err := st.ReadRecord(h)
	if err != nil || rec.Config.Config.StopSignal == "" {
		return 0, err
	}
	sig, err := spec.ParseSignal(rec.Config.Config.StopSignal)
	if err != nil {
		return 0, fmt.Errorf("image %s: STOPSIGNAL: %w", digest, err)
	}
	return sig, nil
}

// stopStage ends the main process of run, a stop asked for, with sig
// and SIGKILL after timeout, and records when it needed SIGKILL. After
// the main process ended, it is the post stage (of a unit whose gate
// runs it then only when SIGKILL ended it). Other stops (systemd stops
// for a failure) are systemd's to finish.
func stopStage(name string, run outcome.Run, sig unix.Signal, timeout time.Duration) error {
	if run.MainPID == 0 {
		return postStage(name, nil, run)
	}
	if !run.Asked() {
		return nil
	}
	killed, err := isolate.StopProcess(run.MainPID, sig, timeout)
	if killed {
		err = errors.Join(err, outcome.Stopped(name, run, timeout), eventlog.Killed(name))
	}
	return err
}

// union is a, then what of b is not in a.
func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// postStage records how run ended, tells the journal of a SIGKILL
// systemd logged at debug level only (the die event's status; the stop
// stage told it of its own), resets the unit's failure when a stop asked
// for (cove stop, systemctl stop) needed SIGKILL, releases networks nets
// and those it was connected to since it started (network.Leased), and
// fails for a SIGKILL nobody asked for.
func postStage(name string, nets []string, run outcome.Run) error {
	v, err := outcome.Post(name, run)
	if v.HiddenKill && v.Record.Kind != outcome.StoppedByKill {
		err = errors.Join(err, eventlog.Killed(name))
	}
	if v.Forgive {
		err = errors.Join(err, supervisor.ForgiveStop(name))
	}
	if len(nets) > 0 { // and those it was connected to since it started
		more, lerr := network.Leased(name)
		err = errors.Join(err, lerr, network.LeaveAll(union(nets, more), name))
	}
	return errors.Join(err, v.Err(name))
}
