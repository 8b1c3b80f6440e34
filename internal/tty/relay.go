package tty

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A relay keeps a detachable terminal: the pty of a container's payload
// (cove run -t, docker run -t) has one reader, the relay, which runs in the
// workload's unit for as long as the terminal lives. It copies everything
// the payload writes to the log (the unit's journal) and to every client
// attached at the time, and what any client sends to the payload's input,
// so that a payload with nobody attached never blocks on a full terminal
// and its output is kept, as under docker run -dt. Clients are
// SOCK_SEQPACKET connections: the console socket of the cove that started
// the run, and those accepted on the relay's socket (cove attach, the API's
// docker attach), each first sent the master (SCM_RIGHTS) to set the
// window size with. A client's output ends (its read returns EOF) when the
// terminal ended; a client that does not keep up is dropped, never waited
// for.

// chunk is the most a relay reads from the master and sends in one
// message; a client reads messages into a buffer at least this large.
const chunk = 16 << 10

// maxInput is the largest message a client may send (SOCK_SEQPACKET
// truncates a longer one to it).
const maxInput = 64 << 10

// clientBacklog is how many messages a client may be behind before the
// relay drops it.
const clientBacklog = 256

// Relay is a running relay of one terminal.
type Relay struct {
	master  *os.File
	log     io.Writer
	logErr  func(error) // told once when the log fails; the relay goes on without it
	mu      sync.Mutex
	clients map[*relayClient]bool
	ended   bool
	wg      sync.WaitGroup
}

// relayClient is one attached connection.
type relayClient struct {
	conn *net.UnixConn
	out  chan []byte
	drop sync.Once
}

// NewRelay makes a relay of master (non-blocking, as Open and Receive
// give it) that copies the output to log (nil: nowhere); logErr hears of
// the log's first failure.
func NewRelay(master *os.File, log io.Writer, logErr func(error)) *Relay {
	return &Relay{master: master, log: log, logErr: logErr, clients: map[*relayClient]bool{}}
}

// Add attaches conn, a SOCK_SEQPACKET connection: the output from now on
// goes to it, and what it sends (messages of at most maxInput bytes) is
// written to the master, until it closes its side (a half-close too) or
// the relay drops it for falling clientBacklog messages behind. With
// sendMaster the master is sent first (one message of one
// byte with the descriptor, as Serve sends it; Receive reads it). The
// relay owns conn.
func (r *Relay) Add(conn *net.UnixConn, sendMaster bool) error {
	c := &relayClient{conn: conn, out: make(chan []byte, clientBacklog)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		conn.Close()
		return nil
	}
	if sendMaster {
		var err error
		if cerr := control(r.master, func(fd int) error {
			_, _, err = conn.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil)
			return nil
		}); cerr != nil || err != nil {
			conn.Close()
			return fmt.Errorf("send the terminal to a client: sendmsg: %w", errors.Join(cerr, err))
		}
	}
	r.clients[c] = true
	r.wg.Add(2)
	go r.write(c)
	go r.input(c)
	return nil
}

// write sends c's queued output; when the queue is closed it ends c's
// output (shutdown: the other holders of a console socket do not end it)
// and closes c.
func (r *Relay) write(c *relayClient) {
	defer r.wg.Done()
	defer c.conn.Close()
	for b := range c.out {
		if _, err := c.conn.Write(b); err != nil {
			r.dropClient(c)
		}
	}
	c.conn.CloseWrite()
}

// input writes what c sends to the master until c closes its side.
func (r *Relay) input(c *relayClient) {
	defer r.wg.Done()
	buf := make([]byte, maxInput)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			r.master.Write(buf[:n])
		}
		if err != nil || n == 0 {
			r.dropClient(c)
			return
		}
	}
}

// dropClient detaches c: its queue is closed, and a pending read or write
// of it returns.
func (r *Relay) dropClient(c *relayClient) {
	c.drop.Do(func() {
		r.mu.Lock()
		delete(r.clients, c)
		r.mu.Unlock()
		close(c.out)
		c.conn.SetReadDeadline(time.Now())
	})
}

// Serve accepts clients on ln until ln is closed; after a failed accept
// (out of descriptors, say) it waits a little before the next.
func (r *Relay) Serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		r.Add(conn, true)
	}
}

// Run copies the master's output until the terminal ends (no process
// holds its slave: EIO) or stop is closed; then it copies for at most
// drain what is left, ends every client's output and returns once they
// are done.
func (r *Relay) Run(stop <-chan struct{}, drain time.Duration) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			r.master.SetReadDeadline(time.Now().Add(drain))
		case <-done:
		}
	}()
	buf := make([]byte, chunk)
	var err error
	for {
		var n int
		n, err = r.master.Read(buf)
		if n > 0 {
			r.fanOut(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			break
		}
	}
	r.end(drain)
	if errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("read the terminal: %w", err)
}

// fanOut sends b to the log and queues it for every client, dropping a
// client whose queue is full.
func (r *Relay) fanOut(b []byte) {
	if r.log != nil {
		if _, err := r.log.Write(b); err != nil {
			r.logErr(err)
			r.log = nil
		}
	}
	r.mu.Lock()
	var slow []*relayClient
	for c := range r.clients {
		select {
		case c.out <- b:
		default:
			slow = append(slow, c)
		}
	}
	r.mu.Unlock()
	for _, c := range slow {
		r.dropClient(c)
		c.conn.SetWriteDeadline(time.Now())
	}
}

// end ends every client's output and waits until each is done: a client
// has drain to take what is queued for it, and input being written to
// the master is cut short.
func (r *Relay) end(drain time.Duration) {
	r.mu.Lock()
	r.ended = true
	clients := make([]*relayClient, 0, len(r.clients))
	for c := range r.clients {
		clients = append(clients, c)
	}
	r.mu.Unlock()
	r.master.SetWriteDeadline(time.Now())
	for _, c := range clients {
		r.dropClient(c)
		c.conn.SetWriteDeadline(time.Now().Add(drain))
	}
	r.wg.Wait()
}

// ErrNoRelay is returned by Dial when no relay listens at the path: the
// workload has no terminal, or it has ended.
var ErrNoRelay = errors.New("no terminal to attach to")

// DialWait is Dial retried while no relay listens at path, for up to
// wait: right after a workload's start is answered its relay, a process
// the launcher starts, may not listen yet.
func DialWait(path string, wait time.Duration) (conn, master *os.File, err error) {
	deadline := time.Now().Add(wait)
	for {
		conn, master, err = Dial(path)
		if err == nil || !errors.Is(err, ErrNoRelay) || time.Now().After(deadline) {
			return conn, master, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dial attaches to the relay listening at path: it returns the connection
// (for AttachVia) and the terminal's master (to set the window size with).
func Dial(path string) (conn, master *os.File, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("attach to %s: socket(AF_UNIX, SOCK_SEQPACKET): %w", path, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			err = fmt.Errorf("%w: %w", ErrNoRelay, err)
		}
		return nil, nil, fmt.Errorf("attach to %s: connect: %w", path, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("attach to %s: fcntl(O_NONBLOCK): %w", path, err)
	}
	conn = os.NewFile(uintptr(fd), path)
	if master, err = Receive(conn); err != nil {
		conn.Close()
		if errors.Is(err, ErrNoTerminal) { // the relay is ending
			err = fmt.Errorf("%w: %w", ErrNoRelay, err)
		}
		return nil, nil, fmt.Errorf("attach to %s: %w", path, err)
	}
	return conn, master, nil
}
