package isolate

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
)

// TestSeedFiles: the seed's meta-data, a #cloud-config of the inline
// values, and on a bridge the guest's network; values that look like YAML
// stay strings.
func TestSeedFiles(t *testing.T) {
	c := testVM()
	c.CloudInit = &launch.CloudInit{Hostname: "web-1", SSHKeys: []string{`ssh-ed25519 AAAA me"}: x`}, Users: []string{"alice"}}
	n := plan.Complete(plan.Network{Name: "lab", Subnet4: netip.MustParsePrefix("10.78.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:78::/64")})
	a := netip.MustParseAddr("10.78.0.9")
	ep := plan.Endpoint{Network: n, Addr4: a, Addr6: plan.Addr6For(n, a), MAC: plan.WorkloadMAC("lab", "db")}
	files, err := SeedFiles(c, &ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Name] = string(f.Data)
	}
	want := map[string]string{
		"meta-data": "instance-id: \"db\"\nlocal-hostname: \"web-1\"\n",
		"user-data": `#cloud-config
hostname: "web-1"
ssh_authorized_keys:
  - "ssh-ed25519 AAAA me\"}: x"
users:
  - default
  - name: "alice"
    shell: /bin/bash
    ssh_authorized_keys:
      - "ssh-ed25519 AAAA me\"}: x"
`,
		"network-config": `version: 2
ethernets:
  eth0:
    match:
      macaddress: "` + ep.MAC.String() + `"
    set-name: eth0
    addresses:
      - "10.78.0.9/24"
      - "fd00:78::9/64"
    routes:
      - to: "0.0.0.0/0"
        via: "10.78.0.1"
      - to: "::/0"
        via: "fd00:78::1"
    nameservers:
      addresses:
        - "10.78.0.1"
`,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s:\n%s\nwant\n%s", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("files %v", got)
	}
}

// TestSeedFilesGiven: user_data and network_config files are used as they
// are; off a bridge there is no network-config; a file that cannot be read
// is an error naming it.
func TestSeedFilesGiven(t *testing.T) {
	c := testVM()
	c.CloudInit = &launch.CloudInit{Hostname: "db", UserData: "/u"}
	read := func(p string) ([]byte, error) {
		if p == "/u" {
			return []byte("#!/bin/sh\necho hi\n"), nil
		}
		return nil, errors.New("no such file")
	}
	files, err := SeedFiles(c, nil, read)
	if err != nil || len(files) != 2 || files[1].Name != "user-data" || string(files[1].Data) != "#!/bin/sh\necho hi\n" {
		t.Errorf("files %q, %v", files, err)
	}
	c.CloudInit.NetworkConfig = "/n"
	if _, err := SeedFiles(c, nil, read); err == nil || !strings.Contains(err.Error(), "network-config") {
		t.Errorf("unreadable network-config: %v", err)
	}
}
