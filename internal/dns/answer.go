package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/cove-project/cove/internal/ondemand"
)

// TTL is the time to live, in seconds, of the records the responder
// answers from its zone: short, because workloads come and go. Negative
// answers carry no SOA, so stub resolvers do not cache them (RFC 2308)
// and a workload that starts is seen at once.
const TTL = 5

// maxUDPReply is the largest UDP reply sent to a client that advertises
// a larger EDNS buffer (the DNS flag day 2020 value).
const maxUDPReply = 1232

// responder answers one query: from the zone, or through the forwarder.
type responder struct {
	zone Zone
	fwd  *forwarder
	act  *ondemand.Idle
	logf func(format string, args ...any)
}

// ServeDNS implements mdns.Handler. A reply to a UDP query is truncated
// (TC set) to what the client can take. A panic while answering is
// logged and the query dropped: no query stops the responder.
func (r *responder) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	r.act.Begin()
	defer r.act.End()
	defer func() {
		if p := recover(); p != nil {
			r.logf("answer a query from %s: panic: %v", w.RemoteAddr(), p)
		}
	}()
	reply := r.answer(w, req)
	if !isTCP(w) {
		reply.Truncate(udpSize(req))
	}
	// A client that went away meanwhile is no error of the responder's.
	_ = w.WriteMsg(reply)
}

// answer is the reply to req. A header may promise one question (see
// accept) that the message does not hold: FORMERR.
func (r *responder) answer(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	if len(req.Question) != 1 {
		return reply(req, mdns.RcodeFormatError)
	}
	q := req.Question[0]
	if q.Qclass == mdns.ClassINET {
		if m, ok := r.local(r.zone, req, q); ok {
			return m
		}
		for _, z := range r.peers(w) {
			if m, ok := r.local(z, req, q); ok {
				return m
			}
		}
	}
	return r.fwd.forward(w, req)
}

// peers are the zones of the asker's other networks (Peers), if the
// zone knows them.
func (r *responder) peers(w mdns.ResponseWriter) []Zone {
	p, ok := r.zone.(Peers)
	if !ok {
		return nil
	}
	return p.ZonesOf(addrOf(w.RemoteAddr()))
}

// local answers q from zone; ok is false for a name to forward.
func (r *responder) local(zone Zone, req *mdns.Msg, q mdns.Question) (m *mdns.Msg, ok bool) {
	name := strings.TrimSuffix(mdns.CanonicalName(q.Name), ".")
	auth, _ := zone.(Authority)
	if a, isPTR := ptrAddr(name); isPTR && q.Qtype == mdns.TypePTR && auth != nil {
		names, owned, err := auth.LookupAddr(a)
		if !owned {
			return nil, false
		}
		return r.authoritative(req, err, names != nil, ptrRecords(q, names)), true
	}
	v4, v6, held, err := zone.Lookup(name)
	if !held && (auth == nil || !auth.Owns(name)) {
		if err != nil {
			r.logf("%v; forwarding %s", err, q.Name)
		}
		return nil, false
	}
	return r.authoritative(req, err, held, addrRecords(q, v4, v6)), true
}

// authoritative is the reply to a query for a name the zone owns:
// SERVFAIL after err, NXDOMAIN for a name that does not exist, else
// NOERROR with answers (maybe none).
func (r *responder) authoritative(req *mdns.Msg, err error, exists bool, answers []mdns.RR) *mdns.Msg {
	if err != nil {
		r.logf("%v", err)
		return reply(req, mdns.RcodeServerFailure)
	}
	if !exists {
		m := reply(req, mdns.RcodeNameError)
		m.Authoritative = true
		return m
	}
	m := reply(req, mdns.RcodeSuccess)
	m.Authoritative = true
	m.Answer = answers
	return m
}

// reply is an empty reply to req with rcode. It offers recursion (other
// names are forwarded) and EDNS to a client that used it.
func reply(req *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	if req.IsEdns0() != nil {
		m.SetEdns0(maxUDPReply, false)
	}
	return m
}

// addrRecords are the A (for A and ANY) and AAAA (for AAAA and ANY)
// records answering q.
func addrRecords(q mdns.Question, v4, v6 []netip.Addr) []mdns.RR {
	var rrs []mdns.RR
	if q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY {
		for _, a := range v4 {
			rrs = append(rrs, &mdns.A{Hdr: header(q, mdns.TypeA), A: a.AsSlice()})
		}
	}
	if q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY {
		for _, a := range v6 {
			rrs = append(rrs, &mdns.AAAA{Hdr: header(q, mdns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

// ptrRecords are the PTR records answering q.
func ptrRecords(q mdns.Question, names []string) []mdns.RR {
	var rrs []mdns.RR
	for _, n := range names {
		rrs = append(rrs, &mdns.PTR{Hdr: header(q, mdns.TypePTR), Ptr: mdns.Fqdn(n)})
	}
	return rrs
}

// header is the header of a record of type t answering q.
func header(q mdns.Question, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: q.Name, Rrtype: t, Class: mdns.ClassINET, Ttl: TTL}
}

// ptrAddr is the address a reverse name (lower case, no trailing dot)
// stands for: D.C.B.A.in-addr.arpa, or 32 nibbles of ip6.arpa lowest
// first.
func ptrAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		var b [4]byte
		ok := reverseLabels(rest, b[:], 8)
		return netip.AddrFrom4(b), ok
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		var b [16]byte
		ok := reverseLabels(rest, b[:], 4)
		return netip.AddrFrom16(b), ok
	}
	return netip.Addr{}, false
}

// reverseLabels fills b from the labels of a reverse name, lowest first,
// each holding bits bits of b (8: decimal octets, 4: hex nibbles). It
// reports whether the labels were exactly that.
func reverseLabels(rest string, b []byte, bits int) bool {
	labels := strings.Split(rest, ".")
	if len(labels) != len(b)*8/bits {
		return false
	}
	base := 10
	if bits == 4 {
		base = 16
	}
	for i, l := range labels {
		v, err := strconv.ParseUint(l, base, bits)
		if err != nil || (bits == 4 && len(l) != 1) {
			return false
		}
		pos := (len(labels) - 1 - i) * bits // bit offset from the top of b
		b[pos/8] |= byte(v) << (8 - bits - pos%8)
	}
	return true
}

// isTCP reports whether w answers over TCP.
func isTCP(w mdns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

// udpSize is the largest UDP reply the client of req takes.
func udpSize(req *mdns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return min(int(opt.UDPSize()), maxUDPReply)
	}
	return mdns.MinMsgSize
}
