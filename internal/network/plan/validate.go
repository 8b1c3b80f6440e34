package plan

import (
	"fmt"
	"net/netip"
)

// InvalidError is a validation error: the network, the setting at fault
// (as a network file names it: "subnet4", "gateway6", "bridge"; "name"
// for the name) and what is wrong. It wraps ErrInvalid.
type InvalidError struct {
	Network string
	Field   string
	Msg     string
}

// Error is "invalid network NAME: MSG".
func (e *InvalidError) Error() string {
	return fmt.Sprintf("%v %q: %s", ErrInvalid, e.Network, e.Msg)
}

// Unwrap is ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// invalid is an *InvalidError.
func invalid(network, field, format string, args ...any) error {
	return &InvalidError{Network: network, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ValidName returns nil if name may name a network: [a-z0-9][a-z0-9_.-]*,
// at most 64 characters.
func ValidName(name string) error {
	if !nameRE().MatchString(name) {
		return invalid(name, "name", "name must match [a-z0-9][a-z0-9_.-]*, at most 64 characters")
	}
	return nil
}

// Validate checks one network on its own: its name, bridge name, subnets
// and gateways. Every error is an *InvalidError.
func Validate(n Network) error {
	if err := ValidName(n.Name); err != nil {
		return err
	}
	if n.Bridge == "" || len(n.Bridge) > 15 || !nameRE().MatchString(n.Bridge) {
		return invalid(n.Name, "bridge", "bridge %q must be 1 to 15 characters [a-z0-9_.-]", n.Bridge)
	}
	if err := checkSubnet(n.Name, "4", n.Subnet4, n.Gateway4); err != nil {
		return err
	}
	if n.NoIPv6 {
		if n.Subnet6.IsValid() || n.Gateway6.IsValid() {
			return invalid(n.Name, "ipv6", "ipv6 is off, but subnet6 %v or gateway6 %v is set", n.Subnet6, n.Gateway6)
		}
		return nil
	}
	return checkSubnet(n.Name, "6", n.Subnet6, n.Gateway6)
}

// checkSubnet checks a subnet's family ("4" or "6"), size and masking
// and that its gateway is a host address inside it.
func checkSubnet(name, fam string, p netip.Prefix, gw netip.Addr) error {
	minBits, maxBits := 8, 30
	if fam == "6" {
		minBits, maxBits = 48, 120
	}
	key := "subnet" + fam
	switch {
	case !p.IsValid() || p.Addr().Is4() != (fam == "4") || p.Addr().Is4In6():
		return invalid(name, key, "%s %v is not an IPv%s prefix", key, p, fam)
	case p.Bits() < minBits || p.Bits() > maxBits:
		return invalid(name, key, "%s %v must be /%d to /%d", key, p, minBits, maxBits)
	case p != p.Masked():
		return invalid(name, key, "%s %v has host bits set (did you mean %v?)", key, p, p.Masked())
	case !p.Contains(gw) || gw == p.Addr() || gw == Last(p):
		return invalid(name, "gateway"+fam, "gateway %v is not a host address inside %s %v", gw, key, p)
	}
	return nil
}

// ValidateAll checks each network and then the set: names and bridges
// used once, and no two networks' subnets overlapping (the error names
// both networks).
func ValidateAll(nets []Network) error {
	for i, a := range nets {
		if err := Validate(a); err != nil {
			return err
		}
		for _, b := range nets[:i] {
			if err := checkPair(b, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPair refuses two networks that share a name, a bridge or address
// space.
func checkPair(a, b Network) error {
	switch {
	case a.Name == b.Name:
		return invalid(a.Name, "name", "declared twice")
	case a.Bridge == b.Bridge:
		return invalid(b.Name, "bridge", "bridge %q is already used by network %q", b.Bridge, a.Name)
	case a.Subnet4.Overlaps(b.Subnet4):
		return invalid(b.Name, "subnet4", "subnet4 %v overlaps subnet4 %v of network %q", b.Subnet4, a.Subnet4, a.Name)
	case a.Subnet6.Overlaps(b.Subnet6):
		return invalid(b.Name, "subnet6", "subnet6 %v overlaps subnet6 %v of network %q", b.Subnet6, a.Subnet6, a.Name)
	}
	return nil
}
