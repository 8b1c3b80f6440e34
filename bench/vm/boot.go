package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/tests/sandbox"
	"github.com/cove-project/cove/tests/vmguest"
)

// bootTimeout bounds one boot (TCG on a busy 2-CPU machine can take long).
const bootTimeout = 3 * time.Minute

// sample is one run: milliseconds from the exec until QEMU created its QMP
// socket, until the marker arrived, until the command exited.
type sample struct{ qmp, marker, exit float64 }

// measureBoots boots the guest through cove (A) and with QEMU directly
// (B), interleaved round-robin, warm-up rounds first, and fills in the
// statistics.
func measureBoots(box *benchbox.Box, p *runPlan, rep *report) error {
	total := rep.Warmup + rep.Rounds
	err := benchbox.Rounds(rep.Warmup, rep.Rounds, true, func(round int, measure bool) error {
		sA, sB, err := bootRound(box.Ctx, box.SB, p, measure)
		if err != nil {
			return fmt.Errorf("round %d, %w", round+1, err)
		}
		tag := "warm-up"
		if measure {
			tag = "measured"
		}
		benchbox.Progress(fmt.Sprintf("round %d/%d (%s): A qmp %.0f, marker %.0f, exit %.0f ms; B qmp %.0f, marker %.0f, exit %.0f ms",
			round+1, total, tag, sA.qmp, sA.marker, sA.exit, sB.qmp, sB.marker, sB.exit))
		return nil
	})
	if err != nil {
		return err
	}
	rep.summarize()
	return nil
}

// bootRound boots A, then B, and keeps the samples if measuring. Its
// errors start with the run that failed ("A: …").
func bootRound(ctx context.Context, sb *sandbox.Sandbox, p *runPlan, measure bool) (sA, sB sample, err error) {
	// A: through cove. QEMU creates its sockets in the VM's directory in
	// the sandbox's /run, which the launcher creates and leaves behind
	// (made here if no run made it yet).
	if err := os.MkdirAll(p.aDir, 0o700); err != nil {
		return sA, sB, err
	}
	if sA, err = timeBoot(ctx, sb, p.a.Argv, p.aDir); err != nil {
		return sA, sB, fmt.Errorf("A: %w", err)
	}
	// B: the same QEMU command, with a fresh socket directory.
	dir, err := os.MkdirTemp(p.sockets, "b-")
	if err != nil {
		return sA, sB, err
	}
	c := p.conf
	c.QMPSocket, c.ConsoleSocket = filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "console.sock")
	argv, err := isolate.QEMUArgv(c)
	if err != nil {
		return sA, sB, err
	}
	sB, err = timeBoot(ctx, sb, argv, dir)
	os.RemoveAll(dir)
	if err != nil {
		return sA, sB, fmt.Errorf("B: %w", err)
	}
	if measure {
		p.a.add(sA)
		p.b.add(sB)
		if p.b.Argv == nil {
			p.b.Argv, p.b.sockDir = argv, dir
		}
	}
	return sA, sB, nil
}

// bootWatch records when, counted from start, QEMU created qmp.sock and
// COVE-GUEST-BOOTED arrived on the command's stdout (-1 for not yet).
type bootWatch struct {
	start       time.Time
	mu          sync.Mutex
	out         bytes.Buffer // the command's stdout
	qmp, marker time.Duration
}

// timeBoot runs argv inside the sandbox with stdout on a pipe and stdin on
// /dev/null, and returns the milliseconds from the exec until qmp.sock
// appeared in sockDir (inotify), until COVE-GUEST-BOOTED arrived on the
// pipe and until the command exited. It fails unless the command exits 0
// and printed the marker.
func timeBoot(ctx context.Context, sb *sandbox.Sandbox, argv []string, sockDir string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	watch, err := watchDir(sockDir)
	if err != nil {
		return sample{}, err
	}
	defer watch.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer r.Close()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	bw := &bootWatch{start: time.Now(), qmp: -1, marker: -1}
	watched, copied := bw.watchQMP(watch), bw.readMarker(r)
	if err := cmd.Start(); err != nil {
		w.Close()
		return sample{}, err
	}
	w.Close()
	err = cmd.Wait()
	done := time.Since(bw.start)
	// The pipe ends once the last writer (QEMU, cove, nsenter) is gone;
	// bound the wait in case a stray holder keeps it open.
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	watch.Close()
	<-watched
	return bw.result(err, done, stderr.String(), sockDir)
}

// watchDir returns a non-blocking inotify descriptor watching dir for
// new entries; closing it ends a Read.
func watchDir(dir string) (*os.File, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	watch := os.NewFile(uintptr(ifd), "inotify")
	if _, err := unix.InotifyAddWatch(ifd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		watch.Close()
		return nil, fmt.Errorf("inotify %s: %w", dir, err)
	}
	return watch, nil
}

// watchQMP records when qmp.sock first appears in watch's events, until
// watch is closed; the channel closes then.
func (bw *bootWatch) watchQMP(watch *os.File) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 16<<10)
		for {
			n, err := watch.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if name == "qmp.sock" {
					bw.mu.Lock()
					if bw.qmp < 0 {
						bw.qmp = time.Since(bw.start)
					}
					bw.mu.Unlock()
				}
			}
		}
	}()
	return done
}

// readMarker copies r to bw.out and records when COVE-GUEST-BOOTED first
// arrived, until r ends; the channel closes then.
func (bw *bootWatch) readMarker(r *os.File) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			bw.mu.Lock()
			bw.out.Write(buf[:n])
			if bw.marker < 0 && bytes.Contains(bw.out.Bytes(), []byte(vmguest.MarkerBooted)) {
				bw.marker = time.Since(bw.start)
			}
			bw.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return done
}

// result is the sample, or why there is none: the command failed (err),
// printed no marker or QEMU created no qmp.sock.
func (bw *bootWatch) result(err error, done time.Duration, stderr, sockDir string) (sample, error) {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	switch {
	case err != nil:
		return sample{}, fmt.Errorf("%v\nstderr: %s\nstdout (end): %s", err, benchbox.Tail(stderr, 10), benchbox.Tail(bw.out.String(), 20))
	case bw.marker < 0:
		return sample{}, fmt.Errorf("no %s on stdout\nstderr: %s\nstdout (end): %s", vmguest.MarkerBooted, benchbox.Tail(stderr, 10), benchbox.Tail(bw.out.String(), 20))
	case bw.qmp < 0:
		return sample{}, fmt.Errorf("QEMU created no qmp.sock in %s", sockDir)
	}
	return sample{benchbox.Millis(bw.qmp), benchbox.Millis(bw.marker), benchbox.Millis(done)}, nil
}
