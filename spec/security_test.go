package spec

import "testing"

// TestUserNSDefault: a container from an image on a network of its own
// gets a user namespace by default; one from a rootfs or on the host's
// network does not; security.userns decides when set; a VM has none.
func TestUserNSDefault(t *testing.T) {
	for _, c := range []struct {
		image, network, userns, want string
	}{
		{"r/a:1", NetworkCove, "", UserNSAuto},
		{"r/a:1", NetworkNone, "", UserNSAuto},
		{"r/a:1", NetworkHost, "", UserNSHost},
		{"", NetworkCove, "", UserNSHost},
		{"r/a:1", NetworkCove, UserNSHost, UserNSHost},
		{"", NetworkHost, UserNSAuto, UserNSAuto},
		{"", NetworkNone, "600000:65536", "600000:65536"},
	} {
		s := Defaults("web")
		s.Container.Image, s.Container.Network, s.Security.UserNS = c.image, c.network, c.userns
		if c.image == "" {
			s.Container.Rootfs = "/srv/web"
		}
		if got := s.UserNS(); got != c.want {
			t.Errorf("image %q, network %s, userns %q: %q, want %q", c.image, c.network, c.userns, got, c.want)
		}
	}
	if got := VMDefaults("vm").UserNS(); got != "" {
		t.Errorf("a VM's user namespace mode: %q, want none", got)
	}
}
