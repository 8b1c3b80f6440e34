package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
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
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("set up firewall of network %s: netlink socket: %w", n.Name, err)
	}
	fw := plan.Firewall(n)
	t := &nftables.Table{Name: fw.Name, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, ch := range fw.Chains {
		chain := c.AddChain(baseChain(t, ch))
		for _, r := range ch.Rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: ruleExprs(r)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("set up firewall of network %s: nftables table inet %s: netlink batch: %w", n.Name, fw.Name, err)
	}
	return nil
}

// Teardown deletes n's table; none is no error. Nothing else is touched.
func Teardown(n plan.Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("tear down firewall of network %s: netlink socket: %w", n.Name, err)
	}
	t := &nftables.Table{Name: plan.TableName(n.Name), Family: nftables.TableFamilyINet}
	c.AddTable(t) // so that the delete finds it: both in one batch
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("tear down firewall of network %s: nftables table inet %s: netlink batch: %w", n.Name, t.Name, err)
	}
	return nil
}

// Tables lists the names of cove's tables (family inet, plan.TablePrefix).
func Tables() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: netlink socket: %w", err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: netlink NFT_MSG_GETTABLE: %w", err)
	}
	var names []string
	for _, t := range ts {
		if strings.HasPrefix(t.Name, plan.TablePrefix) {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// baseChain is the nftables chain of a plan chain, policy accept: cove's
// table only ever drops what concerns its own bridge.
func baseChain(t *nftables.Table, ch plan.Chain) *nftables.Chain {
	hooks := map[string]*nftables.ChainHook{"forward": nftables.ChainHookForward, "postrouting": nftables.ChainHookPostrouting, "prerouting": nftables.ChainHookPrerouting, "output": nftables.ChainHookOutput, "input": nftables.ChainHookInput}
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name: ch.Name, Table: t, Type: nftables.ChainType(ch.Type),
		Hooknum: hooks[ch.Hook], Priority: nftables.ChainPriorityRef(nftables.ChainPriority(ch.Priority)), Policy: &accept,
	}
}

// ruleExprs compiles a plan rule into nftables expressions, with a
// counter before the verdict (nft list table shows what matched).
func ruleExprs(r plan.Rule) []expr.Any {
	var e []expr.Any
	if r.IIF != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(expr.CmpOpEq, ifname(r.IIF)))
	}
	if r.OIF != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmp(expr.CmpOpEq, ifname(r.OIF)))
	}
	if r.Saddr.IsValid() {
		e = append(e, addrMatch(r.Saddr, true, expr.CmpOpEq)...)
	}
	if r.NotDaddr.IsValid() {
		e = append(e, addrMatch(r.NotDaddr, false, expr.CmpOpNeq)...)
	}
	if r.CtState {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATE, Register: 1}, bitsSet(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED))
		e = append(e, cmp(expr.CmpOpNeq, []byte{0, 0, 0, 0}))
	}
	if r.CtDNAT {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATUS, Register: 1}, bitsSet(ipsDstNAT))
		e = append(e, cmp(expr.CmpOpNeq, []byte{0, 0, 0, 0}))
	}
	e = append(e, &expr.Counter{})
	switch r.Verdict {
	case plan.Masquerade:
		return append(e, &expr.Masq{})
	case plan.Drop:
		return append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictAccept})
}

// addrMatch matches the source (or destination) address against p, and
// the packet's family against p's.
func addrMatch(p netip.Prefix, src bool, op expr.CmpOp) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if p.Addr().Is6() {
		proto, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	if !src {
		off += n
	}
	mask := make([]byte, n)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		cmp(op, p.Masked().Addr().AsSlice()),
	}
}

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
