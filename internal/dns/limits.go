package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// MaxQuery is the largest query the responder reads, in bytes: a longer
// UDP datagram is cut (and answered FORMERR), a TCP connection that
// announces a longer message is closed unanswered. Real queries are a
// few hundred bytes.
const MaxQuery = 4096

// errTooLarge is why a TCP connection was closed.
var errTooLarge = errors.New("message too large")

// accept is the responder's mdns.MsgAcceptFunc: mdns's default checks
// (no responses, one question, a few records), and QUERY is the only
// opcode (NOTIFY, which the default lets through, gets NOTIMP).
func accept(h mdns.Header) mdns.MsgAcceptAction {
	if a := mdns.DefaultMsgAcceptFunc(h); a != mdns.MsgAccept {
		return a
	}
	if opcode := int(h.Bits>>11) & 0xF; opcode != mdns.OpcodeQuery {
		return mdns.MsgRejectNotImplemented
	}
	return mdns.MsgAccept
}

// limitTCP is the responder's mdns.DecorateReader: a TCP message longer
// than MaxQuery is refused by its length prefix, before it is read.
func limitTCP(r mdns.Reader) mdns.Reader { return tcpLimitReader{r} }

type tcpLimitReader struct{ mdns.Reader }

// ReadTCP reads one message through a connection that checks its length.
func (r tcpLimitReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	return r.Reader.ReadTCP(&lengthCheckedConn{Conn: conn}, timeout)
}

// lengthCheckedConn reads the 2-byte length prefix of one message,
// refuses a length over MaxQuery, and then passes the prefix and the
// message on.
type lengthCheckedConn struct {
	net.Conn
	checked bool
	prefix  []byte // what of the prefix is still to be passed on
}

// Read implements io.Reader.
func (c *lengthCheckedConn) Read(p []byte) (int, error) {
	if !c.checked {
		b := make([]byte, 2)
		if _, err := io.ReadFull(c.Conn, b); err != nil {
			return 0, err
		}
		if n := binary.BigEndian.Uint16(b); n > MaxQuery {
			return 0, fmt.Errorf("read dns query over tcp from %s: %d bytes, more than %d: %w", c.RemoteAddr(), n, MaxQuery, errTooLarge)
		}
		c.checked, c.prefix = true, b
	}
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
