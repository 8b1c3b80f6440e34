package dns

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// rawUDP sends packet to the responder and returns its reply, or nil if
// none came within wait.
func rawUDP(t *testing.T, r *testResponder, packet []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(packet); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// packed is the wire form of a query for name, changed by edit.
func packed(t *testing.T, name string, edit func(m *mdns.Msg)) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// padded is a query for web.test. with EDNS padding to about size bytes.
func padded(t *testing.T, size int) []byte {
	return packed(t, "web.test.", func(m *mdns.Msg) {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &mdns.EDNS0_PADDING{Padding: make([]byte, size-40)})
	})
}

// TestMalformedUDP sends what no resolver sends: nothing is answered that
// could be used to amplify, a query that cannot be parsed (or is cut at
// MaxQuery) gets FORMERR, an opcode other than QUERY gets NOTIMP, and the
// responder goes on answering. A query longer than 512 bytes (padded)
// is read whole.
func TestMalformedUDP(t *testing.T) {
	r := startResponder(t, Config{Zone: testZone()})
	good := packed(t, "web.test.", nil)
	loop := append([]byte(nil), good[:12]...)
	loop = append(loop, 0xc0, 12, 0, 1, 0, 1) // a name that points at itself
	cases := []struct {
		what   string
		packet []byte
		rcode  int // -1: no reply
	}{
		{"empty", []byte{}, -1},
		{"shorter than a header", good[:11], -1},
		{"a response", packed(t, "web.test.", func(m *mdns.Msg) { m.Response = true }), -1},
		{"a header alone", good[:12], mdns.RcodeFormatError},
		{"a cut question", good[:len(good)-3], mdns.RcodeFormatError},
		{"a compression loop", loop, mdns.RcodeFormatError},
		{"two questions", packed(t, "web.test.", func(m *mdns.Msg) { m.Question = append(m.Question, m.Question[0]) }), mdns.RcodeFormatError},
		{"no question", packed(t, "web.test.", func(m *mdns.Msg) { m.Question = nil }), mdns.RcodeFormatError},
		{"NOTIFY", packed(t, "web.test.", func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), mdns.RcodeNotImplemented},
		{"UPDATE", packed(t, "web.test.", func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }), mdns.RcodeNotImplemented},
		{"padded to 2000 bytes", padded(t, 2000), mdns.RcodeSuccess},
		{"longer than MaxQuery", padded(t, MaxQuery+100), mdns.RcodeFormatError},
		{"garbage", []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff"), mdns.RcodeFormatError},
	}
	for _, c := range cases {
		reply := rawUDP(t, r, c.packet, 300*time.Millisecond)
		switch {
		case c.rcode < 0 && reply != nil:
			t.Errorf("%s: answered (%d bytes), want no reply", c.what, len(reply))
		case c.rcode >= 0 && reply == nil:
			t.Errorf("%s: no reply, want %s", c.what, mdns.RcodeToString[c.rcode])
		case c.rcode >= 0:
			m := new(mdns.Msg)
			if err := m.Unpack(reply); err != nil || m.Rcode != c.rcode {
				t.Errorf("%s: reply %v %v, want %s", c.what, m, err, mdns.RcodeToString[c.rcode])
			}
		}
	}
	if m := query(t, "udp", r.addr, "web.test.", mdns.TypeA); len(m.Answer) != 1 {
		t.Errorf("after the malformed packets: %v", m)
	}
}

// TestMalformedTCP checks that a TCP message announced longer than
// MaxQuery closes the connection before it is read, that an empty or cut
// message is survived, and that the responder goes on answering.
func TestMalformedTCP(t *testing.T) {
	r := startResponder(t, Config{Zone: testZone()})
	c, err := net.Dial("tcp", r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := packed(t, "web.test.", nil)
	big = append(big, make([]byte, MaxQuery)...) // parses, if it were read
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(big)))
	if _, err := c.Write(append(msg, big...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.Read(make([]byte, 512)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a %d-byte message: read %d bytes, %v; want the connection closed", len(big), n, err)
	}

	for _, data := range [][]byte{{0, 0}, {0, 40, 1, 2, 3}, {0}} {
		c, err := net.Dial("tcp", r.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(data)
		c.Close()
	}
	if m := query(t, "tcp", r.addr, "web.test.", mdns.TypeA); len(m.Answer) != 1 {
		t.Errorf("after the malformed messages: %v", m)
	}
}

// TestTCPConnLimit checks that connections beyond MaxTCPConns wait until
// one closes.
func TestTCPConnLimit(t *testing.T) {
	r := startResponder(t, Config{Zone: testZone(), MaxTCPConns: 2})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", r.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	c, err := net.Dial("tcp", r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := packed(t, "web.test.", nil)
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if _, err := c.Read(make([]byte, 2)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was served at once (%v), want it to wait", err)
	}
	idle[0].Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var n uint16
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		t.Fatalf("the waiting connection after one closed: %v", err)
	}
	reply := make([]byte, n)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatal(err)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(reply); err != nil || len(m.Answer) != 1 {
		t.Errorf("reply %v %v", m, err)
	}
}

// TestRandomInput sends 3000 mutations of a query (bytes changed, cut
// anywhere) over UDP and 300 over TCP, then checks that the responder
// still answers. A zone lookup that panics is survived too.
func TestRandomInput(t *testing.T) {
	z := testZone()
	z.panicOn = "boom.test"
	r := startResponder(t, Config{Zone: z})
	if reply := rawUDP(t, r, packed(t, "boom.test.", nil), 300*time.Millisecond); reply != nil {
		t.Errorf("a query whose lookup panicked was answered: %x", reply)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	good := packed(t, "web.test.", func(m *mdns.Msg) { m.SetEdns0(1232, false) })
	udp, err := net.Dial("udp", r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for i := range 3300 {
		p := append([]byte(nil), good[:rng.IntN(len(good)+1)]...)
		for range rng.IntN(4) {
			if len(p) > 0 {
				p[rng.IntN(len(p))] = byte(rng.Uint32())
			}
		}
		if i < 3000 {
			udp.Write(p)
			continue
		}
		c, err := net.Dial("tcp", r.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(p))), p...))
		c.Close()
	}
	for _, proto := range []string{"udp", "tcp"} {
		if m := query(t, proto, r.addr, "web.test.", mdns.TypeA); len(m.Answer) != 1 {
			t.Errorf("after the random input, over %s: %v", proto, m)
		}
	}
}
