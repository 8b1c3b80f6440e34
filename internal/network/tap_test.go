package network

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/tests/harness"
)

// TestAttachTap: a VM's tap replaces a stale link of its name, is an up
// port of the bridge with the bridge's MTU, takes QEMU's attach
// (TUNSETIFF by name, one queue, no packet information), and carries the
// guest's frames: the gateway answers an ARP request from the guest's
// MAC and address on the tap, and (the control) one from another MAC;
// with the workload's tables the latter is dropped and the guest's still
// passes, and so does a datagram from a link-local address the guest
// chose (stable privacy: not its MAC's) to the bridge's. Detach removes
// the tap.
func TestAttachTap(t *testing.T) {
	sandbox(t)
	n, l := plan.Default(), Leases{Root: t.TempDir()}
	must(t, EnsureBridge(n))
	must(t, Setup(n))
	name := plan.HostIfName(n.Name, "vm")
	stale := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
	must(t, netlink.LinkAdd(stale)) // left by a crashed run, with other flags
	staleIndex := stale.Attrs().Index
	a, err := l.Allocate(n, "vm", netip.Addr{})
	must(t, err)
	at, err := AttachTap(n, "vm", a, plan.WorkloadMAC(n.Name, "vm"))
	must(t, err)
	if at.HostIf != name || at.Addr4 != a || at.Addr6 != plan.Addr6For(n, a) || at.MAC != plan.WorkloadMAC(n.Name, "vm") {
		t.Errorf("attachment %+v", at)
	}
	if checkTapLink(t, n, name) == staleIndex {
		t.Errorf("the stale tap %s (index %d) was kept", name, staleIndex)
	}
	tap := openTap(t, name)
	other := plan.MAC{0x02, 0, 0, 0, 0, 0x99}
	if err := arpGateway(tap, at.MAC, at.Addr4, n); err != nil {
		t.Errorf("the guest's ARP request on the tap: %v", err)
	}
	if err := arpGateway(tap, other, at.Addr4, n); err != nil {
		t.Errorf("control: without the workload's tables, an ARP request from another MAC: %v", err)
	}
	must(t, SetupWorkload("vm", []plan.Endpoint{at.Endpoint(n)}, nil))
	if err := arpGateway(tap, other, at.Addr4, n); err == nil {
		t.Error("with the workload's tables, an ARP request from another MAC was answered")
	}
	if err := arpGateway(tap, at.MAC, at.Addr4, n); err != nil {
		t.Errorf("with the workload's tables, the guest's ARP request: %v", err)
	}
	if l, err := netlink.LinkByName(name); err != nil || !at.Guest || !isTap(l) {
		t.Errorf("a tap's attachment is not a guest's (Guest %v, link %v, %v)", at.Guest, l, err)
	}
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	waitBridgeLinkLocal(t, br)
	if !guestDatagram(t, tap, at.MAC, guestLL, n) {
		t.Error("with the workload's tables, a datagram from the guest's own link-local address did not reach the host")
	}
	tap.Close()
	must(t, TeardownWorkload("vm"))
	must(t, Detach(n, "vm"))
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("tap %s is still there after Detach", name)
	}
	must(t, Detach(n, "vm")) // idempotent
}

// checkTapLink checks that link name is a tap, an up port of n's bridge
// with its MTU, and returns its index.
func checkTapLink(t *testing.T, n plan.Network, name string) int {
	t.Helper()
	link, err := netlink.LinkByName(name)
	must(t, err)
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	tap, ok := link.(*netlink.Tuntap)
	switch {
	case !ok || tap.Mode != netlink.TUNTAP_MODE_TAP:
		t.Errorf("%s is a %s (%+v), want a tap", name, link.Type(), link)
	case link.Attrs().MasterIndex != br.Attrs().Index:
		t.Errorf("%s has master %d, want bridge %s (%d)", name, link.Attrs().MasterIndex, n.Bridge, br.Attrs().Index)
	case link.Attrs().Flags&net.FlagUp == 0:
		t.Errorf("%s is down", name)
	case link.Attrs().MTU != br.Attrs().MTU:
		t.Errorf("%s has MTU %d, the bridge %d", name, link.Attrs().MTU, br.Attrs().MTU)
	}
	return link.Attrs().Index
}

// openTap attaches to tap name as QEMU does with -netdev
// tap,ifname=NAME: TUNSETIFF with IFF_TAP and IFF_NO_PI (one queue). The
// file is closed when the test ends.
func openTap(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := harness.OpenTap(name)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// arpGateway writes to tap, as the guest (sha, spa), an ARP request for
// n's gateway, again every 250 ms (the bridge takes the port into use
// only once it has seen the tap's carrier, which comes with the attach,
// through the kernel's link watch), and waits up to 2 s for the gateway's
// reply to sha.
func arpGateway(tap *os.File, sha plan.MAC, spa netip.Addr, n plan.Network) error {
	deadline := time.Now().Add(2 * time.Second)
	buf := make([]byte, 1600)
	for time.Now().Before(deadline) {
		if _, err := tap.Write(arpRequest(sha, spa, n.Gateway4)); err != nil {
			return fmt.Errorf("write to the tap: %w", err)
		}
		next := time.Now().Add(250 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		tap.SetReadDeadline(next)
		for {
			k, err := tap.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return fmt.Errorf("read from the tap: %w", err)
			}
			f := buf[:k]
			// Ethernet to sha, type ARP; ARP reply (opcode 2) from the gateway.
			if len(f) >= 42 && bytes.Equal(f[:6], sha[:]) && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && bytes.Equal(f[28:32], n.Gateway4.AsSlice()) {
				return nil
			}
		}
	}
	return fmt.Errorf("no ARP reply from %v to %v in 2s", n.Gateway4, sha)
}

// guestDatagram writes a UDP datagram from the guest (MAC sha, address
// src) to the bridge's link-local address into tap and says whether the
// host received it.
func guestDatagram(t *testing.T, tap *os.File, sha plan.MAC, src netip.Addr, n plan.Network) bool {
	t.Helper()
	router := plan.LinkLocal(plan.BridgeMAC(n.Name))
	return arrives(t, router, n.Bridge, time.Second, func() error {
		_, err := tap.Write(udp6Frame(sha, plan.BridgeMAC(n.Name), src, router, 5000, plan.DHCP6ServerPort, []byte("guest")))
		return err
	})
}

// udp6Frame is an Ethernet frame from MAC sha to tha holding an IPv6 UDP
// datagram from src:sport to dst:dport with payload.
func udp6Frame(sha, tha plan.MAC, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(append(udp, 0, 0), payload...)
	pseudo := append(append(src.AsSlice(), dst.AsSlice()...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, unix.IPPROTO_UDP)
	var sum uint32
	for _, b := range [][]byte{pseudo, udp} {
		for i := 0; i < len(b); i += 2 {
			sum += uint32(b[i]) << 8
			if i+1 < len(b) {
				sum += uint32(b[i+1])
			}
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum = ^sum & 0xffff; sum == 0 {
		sum = 0xffff // a zero sum is sent as all ones (RFC 8200 8.1)
	}
	binary.BigEndian.PutUint16(udp[6:], uint16(sum))
	ip := []byte{0x60, 0, 0, 0, byte(len(udp) >> 8), byte(len(udp)), unix.IPPROTO_UDP, 255}
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	frame := append(append(append([]byte{}, tha[:]...), sha[:]...), 0x86, 0xdd)
	return append(append(frame, ip...), udp...)
}
