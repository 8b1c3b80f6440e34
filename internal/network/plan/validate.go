package plan

import (
	"fmt"
	"net/netip"
)

// Validate checks one network on its own: its name, bridge name, subnets
// and gateways. Every error wraps ErrInvalid and names the network.
func Validate(n Network) error {
	if !nameRE.MatchString(n.Name) {
		return fmt.Errorf("%w %q: name must match [a-z0-9][a-z0-9_.-]*, at most 64 characters", ErrInvalid, n.Name)
	}
	if n.Bridge == "" || len(n.Bridge) > 15 || !nameRE.MatchString(n.Bridge) {
		return fmt.Errorf("%w %q: bridge %q must be 1 to 15 characters [a-z0-9_.-]", ErrInvalid, n.Name, n.Bridge)
	}
	if err := checkSubnet(n.Name, "subnet4", n.Subnet4, n.Gateway4, true); err != nil {
		return err
	}
	return checkSubnet(n.Name, "subnet6", n.Subnet6, n.Gateway6, false)
}

// checkSubnet checks a subnet's family, size and masking and that its
// gateway is a host address inside it.
func checkSubnet(name, key string, p netip.Prefix, gw netip.Addr, is4 bool) error {
	minBits, maxBits := 8, 30
	if !is4 {
		minBits, maxBits = 48, 120
	}
	switch {
	case !p.IsValid() || p.Addr().Is4() != is4 || p.Addr().Is4In6():
		return fmt.Errorf("%w %q: %s %v is not an IPv%s prefix", ErrInvalid, name, key, p, family(is4))
	case p.Bits() < minBits || p.Bits() > maxBits:
		return fmt.Errorf("%w %q: %s %v must be /%d to /%d", ErrInvalid, name, key, p, minBits, maxBits)
	case p != p.Masked():
		return fmt.Errorf("%w %q: %s %v has host bits set (did you mean %v?)", ErrInvalid, name, key, p, p.Masked())
	case !p.Contains(gw) || gw == p.Addr() || gw == Last(p):
		return fmt.Errorf("%w %q: gateway %v is not a host address inside %s %v", ErrInvalid, name, gw, key, p)
	}
	return nil
}

// family is "4" or "6".
func family(is4 bool) string {
	if is4 {
		return "4"
	}
	return "6"
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
		return fmt.Errorf("%w %q: declared twice", ErrInvalid, a.Name)
	case a.Bridge == b.Bridge:
		return fmt.Errorf("%w %q: bridge %q is already used by network %q", ErrInvalid, b.Name, b.Bridge, a.Name)
	case a.Subnet4.Overlaps(b.Subnet4):
		return fmt.Errorf("%w %q: subnet4 %v overlaps subnet4 %v of network %q", ErrInvalid, b.Name, b.Subnet4, a.Subnet4, a.Name)
	case a.Subnet6.Overlaps(b.Subnet6):
		return fmt.Errorf("%w %q: subnet6 %v overlaps subnet6 %v of network %q", ErrInvalid, b.Name, b.Subnet6, a.Subnet6, a.Name)
	}
	return nil
}
