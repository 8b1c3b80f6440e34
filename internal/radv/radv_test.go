package radv

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestAdvertisement: what a guest reads from the wire (marshalled and
// parsed back): hop limit 64, managed and other configuration, the
// bridge as router for 65535 s, the network's prefix on-link for ever
// and not for autoconfiguration, the bridge's MAC, and the gateway as
// DNS server with the network as search domain, which a network
// without DNS leaves out.
func TestAdvertisement(t *testing.T) {
	n := plan.Complete(plan.Network{Name: "lab", Subnet4: netip.MustParsePrefix("198.18.4.0/24"), Subnet6: netip.MustParsePrefix("fd00:cafe::/64")})
	mac := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	ra := parsed(t, Advertisement(n, mac))
	if ra.CurrentHopLimit != 64 || !ra.ManagedConfiguration || !ra.OtherConfiguration || ra.RouterLifetime != 65535*time.Second {
		t.Errorf("header: %+v", ra)
	}
	var pi *ndp.PrefixInformation
	var lla *ndp.LinkLayerAddress
	var rdnss *ndp.RecursiveDNSServer
	var dnssl *ndp.DNSSearchList
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PrefixInformation:
			pi = o
		case *ndp.LinkLayerAddress:
			lla = o
		case *ndp.RecursiveDNSServer:
			rdnss = o
		case *ndp.DNSSearchList:
			dnssl = o
		}
	}
	if pi == nil || pi.Prefix != netip.MustParseAddr("fd00:cafe::") || pi.PrefixLength != 64 || !pi.OnLink || pi.AutonomousAddressConfiguration || pi.ValidLifetime != ndp.Infinity || pi.PreferredLifetime != ndp.Infinity {
		t.Errorf("prefix: %+v", pi)
	}
	if lla == nil || lla.Direction != ndp.Source || !slices.Equal(lla.Addr, mac) {
		t.Errorf("source link-layer address: %+v, want %v", lla, mac)
	}
	if rdnss == nil || !slices.Equal(rdnss.Servers, []netip.Addr{n.Gateway6}) || rdnss.Lifetime != RouterLifetime {
		t.Errorf("DNS server: %+v, want %v", rdnss, n.Gateway6)
	}
	if dnssl == nil || !slices.Equal(dnssl.DomainNames, []string{"lab"}) || dnssl.Lifetime != RouterLifetime {
		t.Errorf("search list: %+v", dnssl)
	}
	n.Name = "a..b" // a valid network name, not a domain name
	if got := parsed(t, Advertisement(n, mac)); len(got.Options) != 3 {
		t.Errorf("a network whose name is no domain name: options %v", got.Options)
	}
	n.NoDNS = true
	if got := parsed(t, Advertisement(n, mac)); len(got.Options) != 2 {
		t.Errorf("a network without DNS: options %v", got.Options)
	}
}

// TestPokerNeverBlocks: with nobody reading the socket, the pokes beyond
// its queue are dropped at once, unlogged; a missing socket is logged.
func TestPokerNeverBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ra.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		poke := Poker(path, logf)
		for range 2000 {
			poke()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a poke blocked on a full socket")
	}
	if len(logs) != 0 {
		t.Errorf("logged: %q", logs)
	}
	Poker(filepath.Join(t.TempDir(), "none.sock"), logf)()
	if len(logs) != 1 || !strings.Contains(logs[0], "none.sock") {
		t.Errorf("a missing socket logged %q", logs)
	}
}

// parsed is ra through its bytes.
func parsed(t *testing.T, ra *ndp.RouterAdvertisement) *ndp.RouterAdvertisement {
	t.Helper()
	b, err := ndp.MarshalMessage(ra)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*ndp.RouterAdvertisement)
}
