package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// Setup installs n's firewall (plan.Firewall) in the network namespace of
// the calling thread: one netlink batch adds n's table (a no-op if it
// exists), deletes it, and adds it again with its chains and rules, so the
// kernel swaps the whole table atomically and a rerun (after an admin's
// "nft flush ruleset", say) restores it. Only the table
// plan.TableName(n.Name) of family inet is touched.
func Setup(n plan.Network) error {
	fw := plan.Firewall(n)
	if err := replaceTables([]plan.Table{fw}, []plan.Table{fw}); err != nil {
		return fmt.Errorf("set up firewall of network %s: %w", n.Name, err)
	}
	return nil
}

// Teardown deletes n's table; none is no error. Nothing else is touched.
func Teardown(n plan.Network) error {
	t := plan.Table{Family: plan.FamilyINet, Name: plan.TableName(n.Name)}
	if err := replaceTables([]plan.Table{t}, nil); err != nil {
		return fmt.Errorf("tear down firewall of network %s: %w", n.Name, err)
	}
	return nil
}

// Tables lists cove's tables (families inet and bridge, names starting
// with plan.TablePrefix) as "FAMILY NAME", sorted.
func Tables() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: netlink socket: %w", err)
	}
	ts, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: netlink NFT_MSG_GETTABLE: %w", err)
	}
	var names []string
	for _, t := range ts {
		for name, fam := range families {
			if t.Family == fam && strings.HasPrefix(t.Name, plan.TablePrefix) {
				names = append(names, name+" "+t.Name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// families are the nftables families of plan tables.
var families = map[string]nftables.TableFamily{plan.FamilyINet: nftables.TableFamilyINet, plan.FamilyBridge: nftables.TableFamilyBridge}

// HostChains lists the base chains of every nftables table in the
// calling thread's network namespace (cove's, the admin's, iptables-nft's)
// with their hook and policy, for plan.BlockingChains. Tables of families
// whose hooks are not the inet ones (arp, netdev) are left out.
func HostChains() ([]plan.HostChain, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: netlink socket: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: netlink NFT_MSG_GETCHAIN: %w", err)
	}
	hooks := map[uint32]string{unix.NF_INET_PRE_ROUTING: "prerouting", unix.NF_INET_LOCAL_IN: "input",
		unix.NF_INET_FORWARD: "forward", unix.NF_INET_LOCAL_OUT: "output", unix.NF_INET_POST_ROUTING: "postrouting"}
	var out []plan.HostChain
	for _, ch := range chains {
		fam, ok := familyNames[ch.Table.Family]
		if !ok || ch.Hooknum == nil {
			continue
		}
		out = append(out, plan.HostChain{Family: fam, Table: ch.Table.Name, Chain: ch.Name, Hook: hooks[uint32(*ch.Hooknum)],
			Drop: ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop})
	}
	return out, nil
}

// familyNames are nft's names of the families whose hooks are the inet
// ones.
var familyNames = map[nftables.TableFamily]string{nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyINet: "inet", nftables.TableFamilyBridge: "bridge"}

// replaceTables sends one netlink batch that deletes each table of del
// that exists (it adds it first: deleting a missing table would fail the
// batch) and then adds each table of put with its chains and rules. A
// table of put that exists must be in del too. Either the whole batch
// applies or none of it.
func replaceTables(del, put []plan.Table) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	for _, t := range del {
		nt, err := nftTable(t)
		if err != nil {
			return err
		}
		c.AddTable(nt)
		c.DelTable(nt)
	}
	for _, t := range put {
		if err := addTable(c, t); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables %s: netlink batch: %w", tableNames(append(slices.Clone(del), put...)), err)
	}
	return nil
}

// addTable queues the creation of t with its chains and rules.
func addTable(c *nftables.Conn, t plan.Table) error {
	nt, err := nftTable(t)
	if err != nil {
		return err
	}
	c.AddTable(nt)
	for _, ch := range t.Chains {
		chain := c.AddChain(baseChain(nt, ch))
		for _, r := range ch.Rules {
			exprs, err := ruleExprs(nt.Family, r)
			if err != nil {
				return fmt.Errorf("table %s %s chain %s: rule %q: %w", t.Family, t.Name, ch.Name, r, err)
			}
			c.AddRule(&nftables.Rule{Table: nt, Chain: chain, Exprs: exprs})
		}
	}
	return nil
}

// nftTable is the nftables table of a plan table.
func nftTable(t plan.Table) (*nftables.Table, error) {
	fam, ok := families[t.Family]
	if !ok {
		return nil, fmt.Errorf("table %s: unknown family %q", t.Name, t.Family)
	}
	return &nftables.Table{Name: t.Name, Family: fam}, nil
}

// tableNames names tables for errors: "table inet A, table bridge B".
func tableNames(ts []plan.Table) string {
	var names []string
	for _, t := range ts {
		if n := "table " + t.Family + " " + t.Name; !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// baseChain is the nftables chain of a plan chain, policy accept: cove's
// tables only ever drop what concerns their own bridge or bridge port, or
// carries a workload's own link-local address (plan.WorkloadFirewall).
func baseChain(t *nftables.Table, ch plan.Chain) *nftables.Chain {
	hooks := map[string]*nftables.ChainHook{"forward": nftables.ChainHookForward, "postrouting": nftables.ChainHookPostrouting, "prerouting": nftables.ChainHookPrerouting, "output": nftables.ChainHookOutput, "input": nftables.ChainHookInput}
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name: ch.Name, Table: t, Type: nftables.ChainType(ch.Type),
		Hooknum: hooks[ch.Hook], Priority: nftables.ChainPriorityRef(nftables.ChainPriority(ch.Priority)), Policy: &accept,
	}
}

// ruleExprs compiles a plan rule, for a table of family fam, into
// nftables expressions in the order of plan.Rule's fields (nft's), with a
// counter before the verdict (nft list table shows what matched).
func ruleExprs(fam nftables.TableFamily, r plan.Rule) ([]expr.Any, error) {
	var e []expr.Any
	if r.IIF != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(expr.CmpOpEq, ifname(r.IIF)))
	}
	if r.NotIIF != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(expr.CmpOpNeq, ifname(r.NotIIF)))
	}
	if r.OIF != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmp(expr.CmpOpEq, ifname(r.OIF)))
	}
	if r.NotEtherSaddr != (plan.MAC{}) {
		e = append(e, load(expr.PayloadBaseLLHeader, 6, 6), cmp(expr.CmpOpNeq, r.NotEtherSaddr[:]))
	}
	for _, t := range r.NotEtherTypes {
		e = append(e, load(expr.PayloadBaseLLHeader, 12, 2), cmp(expr.CmpOpNeq, be16(uint16(t))))
	}
	if r.FibDaddrLocal {
		e = append(e, &expr.Fib{Register: 1, ResultADDRTYPE: true, FlagDADDR: true})
		e = append(e, cmp(expr.CmpOpEq, binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)))
	}
	e = append(e, addrExprs(fam, r)...)
	if len(r.NotARPSaddr) > 0 {
		e = append(e, etherType(plan.EtherARP)...)
	}
	for _, a := range r.NotARPSaddr {
		// The sender protocol address follows hardware type and protocol
		// type (2 bytes each), their lengths (1 each), the operation (2)
		// and the sender hardware address (6): offset 14 of the ARP header.
		e = append(e, load(expr.PayloadBaseNetworkHeader, 14, 4), cmp(expr.CmpOpNeq, a.AsSlice()))
	}
	l4, err := l4Exprs(r)
	if err != nil {
		return nil, err
	}
	e = append(e, l4...)
	if r.CtState {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATE, Register: 1}, bitsSet(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED))
		e = append(e, cmp(expr.CmpOpNeq, []byte{0, 0, 0, 0}))
	}
	if r.CtDNAT {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATUS, Register: 1}, bitsSet(ipsDstNAT))
		e = append(e, cmp(expr.CmpOpNeq, []byte{0, 0, 0, 0}))
	}
	return append(append(e, &expr.Counter{}), verdictExprs(r)...), nil
}

// addrExprs matches the rule's addresses, after one test of the packet's
// family: meta nfproto in an inet table, the frame's type in a bridge
// table.
func addrExprs(fam nftables.TableFamily, r plan.Rule) []expr.Any {
	var e []expr.Any
	match := func(p netip.Prefix, src bool, op expr.CmpOp) {
		if p.IsValid() {
			e = append(e, addrMatch(p, src, op)...)
		}
	}
	match(r.Saddr, true, expr.CmpOpEq)
	for _, p := range r.NotSaddr {
		match(p, true, expr.CmpOpNeq)
	}
	match(r.Daddr, false, expr.CmpOpEq)
	match(r.NotDaddr, false, expr.CmpOpNeq)
	if len(e) == 0 {
		return nil
	}
	ether, proto := plan.EtherIP, byte(unix.NFPROTO_IPV4)
	if r.IPFamily() == "ip6" {
		ether, proto = plan.EtherIPv6, unix.NFPROTO_IPV6
	}
	if fam == nftables.TableFamilyBridge {
		return append(etherType(ether), e...)
	}
	return append([]expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto})}, e...)
}

// addrMatch compares the source (or destination) address with p: the
// whole address, or its first p.Bits() bits.
func addrMatch(p netip.Prefix, src bool, op expr.CmpOp) []expr.Any {
	off, n := uint32(12), uint32(4)
	if p.Addr().Is6() {
		off, n = 8, 16
	}
	if !src {
		off += n
	}
	return prefixMatch(expr.PayloadBaseNetworkHeader, off, p, op)
}

// prefixMatch compares the address at off of a header with p: the whole
// address, or its first p.Bits() bits.
func prefixMatch(base expr.PayloadBase, off uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	n := uint32(p.Addr().BitLen() / 8)
	e := []expr.Any{load(base, off, n)}
	if !p.IsSingleIP() {
		mask := make([]byte, n)
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, cmp(op, p.Masked().Addr().AsSlice()))
}

// l4Protos are the protocol numbers of plan.Rule.L4Proto.
var l4Protos = map[string]byte{plan.TCP: unix.IPPROTO_TCP, plan.UDP: unix.IPPROTO_UDP, plan.ICMP: unix.IPPROTO_ICMP, plan.ICMPv6: unix.IPPROTO_ICMPV6}

// l4Exprs matches the layer-4 protocol, ports and ICMPv6 fields.
func l4Exprs(r plan.Rule) ([]expr.Any, error) {
	ndTarget := r.NDTarget.IsValid() || len(r.NotNDTarget) > 0
	if r.L4Proto == "" && r.Sport == 0 && r.Dport == 0 && r.ICMPv6Type == 0 && !ndTarget {
		return nil, nil
	}
	proto, ok := l4Protos[r.L4Proto]
	if !ok {
		return nil, fmt.Errorf("unknown protocol %q", r.L4Proto)
	}
	e := []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto})}
	if (r.Sport != 0 || r.Dport != 0) && proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP {
		return nil, fmt.Errorf("a port needs tcp or udp, not %s", r.L4Proto)
	}
	if (r.ICMPv6Type != 0 || ndTarget) && proto != unix.IPPROTO_ICMPV6 {
		return nil, fmt.Errorf("an ICMPv6 type or target needs %s, not %s", plan.ICMPv6, r.L4Proto)
	}
	// TCP and UDP: source port at offset 0, destination port at 2.
	// ICMPv6: the type at offset 0; a neighbour advertisement's or
	// solicitation's target address follows the type, code, checksum and
	// flags or reserved bits (offset 8).
	for _, f := range []struct {
		off, n uint32
		v      []byte
		set    bool
	}{
		{0, 2, be16(r.Sport), r.Sport != 0},
		{2, 2, be16(r.Dport), r.Dport != 0},
		{0, 1, []byte{r.ICMPv6Type}, r.ICMPv6Type != 0},
	} {
		if f.set {
			e = append(e, load(expr.PayloadBaseTransportHeader, f.off, f.n), cmp(expr.CmpOpEq, f.v))
		}
	}
	if r.NDTarget.IsValid() {
		e = append(e, prefixMatch(expr.PayloadBaseTransportHeader, 8, r.NDTarget, expr.CmpOpEq)...)
	}
	for _, p := range r.NotNDTarget {
		e = append(e, prefixMatch(expr.PayloadBaseTransportHeader, 8, p, expr.CmpOpNeq)...)
	}
	return e, nil
}

// verdictExprs is the statement that ends the rule.
func verdictExprs(r plan.Rule) []expr.Any {
	switch r.Verdict {
	case plan.Masquerade:
		return []expr.Any{&expr.Masq{}}
	case plan.Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	case plan.DNAT:
		family := uint32(unix.NFPROTO_IPV4)
		if r.DNATTo.Addr().Is6() {
			family = unix.NFPROTO_IPV6
		}
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: r.DNATTo.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: be16(r.DNATTo.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}
	}
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
}

// etherType matches the frame's type (bridge family).
func etherType(t plan.EtherType) []expr.Any {
	return []expr.Any{load(expr.PayloadBaseLLHeader, 12, 2), cmp(expr.CmpOpEq, be16(uint16(t)))}
}

// load loads n bytes at off of a header into register 1.
func load(base expr.PayloadBase, off, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}
}

// be16 is a 16-bit value in network byte order.
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// ipsDstNAT is the conntrack status bit IPS_DST_NAT (linux/netfilter/
// nf_conntrack_common.h): the connection was destination-NATed.
const ipsDstNAT = 1 << 5

// bitsSet keeps only the bits of a 32-bit register value (host order, as
// ct state and ct status are) that are in mask.
func bitsSet(mask uint32) expr.Any {
	m := binary.NativeEndian.AppendUint32(nil, mask)
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}}
}

// cmp compares register 1 with data.
func cmp(op expr.CmpOp, data []byte) expr.Any {
	return &expr.Cmp{Op: op, Register: 1, Data: data}
}

// ifname is an interface name as meta iifname/oifname load it: IFNAMSIZ
// bytes, zero-padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}
