// Command echo is the helper of the networking benchmark (bench/net). It
// is built static (CGO_ENABLED=0) into the benchmark's busybox rootfs as
// /bin/netbench, so that the same binary runs in cove's and podman's
// containers and in the sandbox's own namespace.
//
//	netbench serve -addr :7000             TCP server (runs until killed)
//	netbench rr -addr A -n 2000 -size 1    request/response latency
//	netbench bulk -addr A -duration 1s     one-stream throughput
//	netbench conn -addr A -n 500           new connections per second
//	netbench ip                            the first non-loopback IPv4
//
// The clients print one JSON object on stdout and exit; every loop is
// bounded in count and by -timeout. A connection starts with one byte
// that says what the server does with it: 'e' echoes every byte back, 's'
// reads until the client's half-close and answers with the byte count (8
// bytes, big endian).
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"time"
)

// Modes: the first byte a client sends.
const (
	modeEcho = 'e'
	modeSink = 's'
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netbench serve|rr|bulk|conn|ip [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "", "address to listen on (serve) or connect to")
	n := fs.Int("n", 1000, "round trips (rr) or connections (conn)")
	size := fs.Int("size", 1, "bytes per request and per response (rr)")
	dur := fs.Duration("duration", time.Second, "how long to send (bulk)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of the whole client run")
	fs.Parse(os.Args[2:])
	var out any
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(*addr)
	case "rr":
		out, err = requestResponse(*addr, *n, *size, *timeout)
	case "bulk":
		out, err = bulk(*addr, *dur, *timeout)
	case "conn":
		out, err = connections(*addr, *n, *timeout)
	case "ip":
		out, err = firstIPv4()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err == nil && out != nil {
		err = json.NewEncoder(os.Stdout).Encode(out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// serve accepts connections on addr and serves each by its first byte.
func serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go handle(c)
	}
}

// handle serves one connection: echo or sink, by its first byte.
func handle(c net.Conn) {
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	buf := make([]byte, 128<<10)
	switch mode[0] {
	case modeEcho:
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case modeSink:
		var total uint64
		for {
			n, err := c.Read(buf)
			total += uint64(n)
			if err != nil {
				break
			}
		}
		binary.BigEndian.PutUint64(buf[:8], total)
		c.Write(buf[:8])
	}
}

// latencies summarises per-operation times, in microseconds.
type latencies struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	Mean float64 `json:"mean_us"`
	Max  float64 `json:"max_us"`
}

// summarize computes the nearest-rank p50 and p99, the mean and the
// maximum of ds.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencies{N: len(ds), P50: us(rank(0.50)), P99: us(rank(0.99)),
		Mean: us(sum) / float64(len(ds)), Max: us(ds[len(ds)-1])}
}

// rrWarmup round trips precede the measured ones on the same connection.
const rrWarmup = 50

// requestResponse opens one connection in echo mode and times n round
// trips of size bytes each way, after rrWarmup unmeasured ones.
func requestResponse(addr string, n, size int, timeout time.Duration) (latencies, error) {
	c, err := dialMode(addr, modeEcho, timeout)
	if err != nil {
		return latencies{}, err
	}
	defer c.Close()
	req, resp := make([]byte, size), make([]byte, size)
	ds := make([]time.Duration, 0, n)
	for i := 0; i < rrWarmup+n; i++ {
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return latencies{}, fmt.Errorf("round trip %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return latencies{}, fmt.Errorf("round trip %d: read: %w", i, err)
		}
		if i >= rrWarmup {
			ds = append(ds, time.Since(start))
		}
	}
	return summarize(ds), nil
}

// throughput is the result of bulk.
type throughput struct {
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"` // 10^6 bytes per second
}

// bulk sends for d on one connection in sink mode, half-closes it and
// waits for the server's count: the time runs until that answer, so
// every byte counted has arrived.
func bulk(addr string, d, timeout time.Duration) (throughput, error) {
	c, err := dialMode(addr, modeSink, timeout)
	if err != nil {
		return throughput{}, err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return throughput{}, fmt.Errorf("write: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return throughput{}, fmt.Errorf("half-close: %w", err)
	}
	var count [8]byte
	if _, err := io.ReadFull(c, count[:]); err != nil {
		return throughput{}, fmt.Errorf("read the server's count: %w", err)
	}
	secs := time.Since(start).Seconds()
	total := binary.BigEndian.Uint64(count[:])
	return throughput{Bytes: total, Seconds: secs, MBps: float64(total) / secs / 1e6}, nil
}

// connRate is the result of connections.
type connRate struct {
	latencies
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_s"`
}

// connections opens n connections one after the other; each sends its
// mode byte and one more, reads the echo, and is closed with SO_LINGER 0
// (a reset: no TIME_WAIT to exhaust the ports). A connection counts only
// once the server has answered through it, so a port that is held but
// not forwarded cannot pass. Latencies are per connection.
func connections(addr string, n int, timeout time.Duration) (connRate, error) {
	deadline := time.Now().Add(timeout)
	ds := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := oneConnection(addr, deadline); err != nil {
			return connRate{}, fmt.Errorf("connection %d: %w", i, err)
		}
		ds = append(ds, time.Since(t0))
	}
	secs := time.Since(start).Seconds()
	return connRate{latencies: summarize(ds), Seconds: secs, PerSec: float64(n) / secs}, nil
}

// oneConnection is one connection of connections.
func oneConnection(addr string, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte{modeEcho, 'x'}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return c.(*net.TCPConn).SetLinger(0)
}

// dialMode connects to addr, bounds the connection by timeout and sends
// the mode byte.
func dialMode(addr string, mode byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{mode}); err != nil {
		c.Close()
		return nil, fmt.Errorf("send the mode: %w", err)
	}
	return c, nil
}

// firstIPv4 returns the first IPv4 address of an interface other than lo.
func firstIPv4() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no IPv4 address outside lo")
}
