package stage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Descriptors the launcher passes to the relay stage; --ready-fd names a
// third, a pipe to the launcher (one byte once the relay is ready), which
// a launcher from before it did not pass.
const (
	relayMasterFd = 3 // the terminal's master
	relayFirstFd  = 4 // the console socket of the cove that started the run: its first client
)

// relayDrain is how long the relay copies what is left of the output
// once systemd stops it (the payload has ended or is being stopped).
const relayDrain = 500 * time.Millisecond

// journalStream is journald's socket for a program's output stream.
const journalStream = "/run/systemd/journal/stdout"

// terminalRelay is the relay stage (launch.RelayVerb, "launch-relay
// --name NAME --ready-fd FD"), which the launcher starts for a container
// with a terminal (--console) beside its payload, in the unit: it keeps
// the terminal (tty.Relay) with the master on relayMasterFd, the starting
// cove's console socket on relayFirstFd as its first client, the output
// logged to the journal as NAME's, and launch.TerminalSocket(NAME) for
// more clients; it writes one byte to the --ready-fd pipe when it is
// ready, and the launcher releases the payload only then. It ends when
// the terminal does, or copies what is left and ends on SIGTERM
// (systemd's, at the unit's stop).
func terminalRelay(_ string, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet(launch.RelayVerb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the container")
	readyFd := fs.Int("ready-fd", -1, "a pipe to write one byte to once ready")
	if err := fs.Parse(args); err != nil || *name == "" || fs.NArg() != 0 {
		return usagef("%s: want --name NAME [--ready-fd FD]", launch.RelayVerb)
	}
	stopped, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	master := os.NewFile(relayMasterFd, "pty master")
	logs, err := journalWriter(*name)
	if err != nil {
		fmt.Fprintf(stderr, "cove: %s's terminal is not logged: %v\n", *name, err)
	}
	r := tty.NewRelay(master, logs, func(err error) {
		fmt.Fprintf(stderr, "cove: %s's terminal is no longer logged: %v\n", *name, err)
	})
	firstFile := os.NewFile(relayFirstFd, "console socket")
	first, err := net.FileConn(firstFile) // a copy of the descriptor
	firstFile.Close()
	if c, ok := first.(*net.UnixConn); ok && err == nil {
		r.Add(c, true) // gone at a restart: the send fails, and the relay forgets it
	}
	ln, err := listenRelay(launch.TerminalSocket(*name))
	if err != nil {
		fmt.Fprintf(stderr, "cove: %s's terminal cannot be attached to: %v\n", *name, err)
	} else {
		defer ln.Close()
		go r.Serve(ln)
	}
	if *readyFd >= 0 { // SIGTERM is handled, the log open: the payload may go
		ready := os.NewFile(uintptr(*readyFd), "ready pipe")
		ready.Write([]byte{1})
		ready.Close()
	}
	return r.Run(stopped.Done(), relayDrain)
}

// journalWriter opens a stream to the journal for the output of the
// container name, with its name as the syslog identifier (the unit's
// SyslogIdentifier=) at priority info: what systemd does for a unit's
// StandardOutput=journal. The journal files it under the unit it finds
// the relay's process in, or, when that process has ended before
// journald read its first line (a busy journald, a payload that ends at
// once), under the unit the header names, as systemd's own streams do:
// name's.
func journalWriter(name string) (io.Writer, error) {
	c, err := net.Dial("unix", journalStream)
	if err != nil {
		return nil, err
	}
	// identifier, unit ID, priority, level prefix, forward to syslog, to kmsg, to the console
	if _, err := fmt.Fprintf(c, "%s\n%s\n6\n0\n0\n0\n0\n", name, spec.UnitName(name)); err != nil {
		c.Close()
		return nil, fmt.Errorf("write the stream header to %s: %w", journalStream, err)
	}
	c.(*net.UnixConn).CloseRead()
	return c, nil
}

// listenRelay listens for clients at path, in the directory systemd made
// for it (RuntimeDirectory=; a socket left there by a relay that was
// killed is removed), for root only.
func listenRelay(path string) (*net.UnixListener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}
