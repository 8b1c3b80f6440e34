package isolate

// This file is pure: the files of a VM's cloud-init seed (NoCloud).

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
)

// SeedFile is one file of a cloud-init seed.
type SeedFile struct {
	Name string // meta-data, user-data or network-config
	Data []byte
}

// SeedFiles returns the files of c's NoCloud seed, reading the files the
// spec names with read:
//
//   - meta-data: instance-id (the workload's name: cloud-init's per-instance
//     steps run again only for a new VM, whose overlay is new anyway) and
//     local-hostname;
//   - user-data: the file c.CloudInit.UserData as it is, or a #cloud-config
//     setting the hostname, the authorized keys of the image's default user
//     and the users to create (each with the same keys);
//   - network-config: the file c.CloudInit.NetworkConfig, or for a VM on a
//     bridge (ep not nil) version 2 configuration of its NIC, matched by
//     its MAC: the leased address and its IPv6 twin, the gateways and, when
//     the network has DNS, its gateway as name server; none otherwise (the
//     image's default, DHCP).
//
// Every value cove writes into YAML is a JSON string (a YAML
// double-quoted scalar), so no value can add keys.
func SeedFiles(c launch.VMConfig, ep *plan.Endpoint, read func(string) ([]byte, error)) ([]SeedFile, error) {
	ci := c.CloudInit
	files := []SeedFile{{"meta-data", []byte(fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", quote(c.Name), quote(ci.Hostname)))}}
	userData := cloudConfig(ci)
	if ci.UserData != "" {
		b, err := read(ci.UserData)
		if err != nil {
			return nil, fmt.Errorf("read user-data: %w", err)
		}
		userData = b
	}
	files = append(files, SeedFile{"user-data", userData})
	switch {
	case ci.NetworkConfig != "":
		b, err := read(ci.NetworkConfig)
		if err != nil {
			return nil, fmt.Errorf("read network-config: %w", err)
		}
		files = append(files, SeedFile{"network-config", b})
	case ep != nil:
		files = append(files, SeedFile{"network-config", networkConfig(*ep)})
	}
	return files, nil
}

// cloudConfig is the #cloud-config of ci's inline values.
func cloudConfig(ci *launch.CloudInit) []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	fmt.Fprintf(&b, "hostname: %s\n", quote(ci.Hostname))
	keys := func(indent string) {
		if len(ci.SSHKeys) == 0 {
			return
		}
		fmt.Fprintf(&b, "%sssh_authorized_keys:\n", indent)
		for _, k := range ci.SSHKeys {
			fmt.Fprintf(&b, "%s  - %s\n", indent, quote(k))
		}
	}
	keys("")
	if len(ci.Users) > 0 {
		b.WriteString("users:\n  - default\n")
		for _, u := range ci.Users {
			fmt.Fprintf(&b, "  - name: %s\n    shell: /bin/bash\n", quote(u))
			keys("    ")
		}
	}
	return []byte(b.String())
}

// networkConfig is the network-config (version 2) of the guest at ep.
func networkConfig(ep plan.Endpoint) []byte {
	n := ep.Network
	var b strings.Builder
	fmt.Fprintf(&b, "version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: %s\n    set-name: eth0\n    addresses:\n      - %s\n",
		quote(ep.MAC.String()), quote(fmt.Sprintf("%v/%d", ep.Addr4, n.Subnet4.Bits())))
	if ep.Addr6.IsValid() {
		fmt.Fprintf(&b, "      - %s\n", quote(fmt.Sprintf("%v/%d", ep.Addr6, n.Subnet6.Bits())))
	}
	fmt.Fprintf(&b, "    routes:\n      - to: %s\n        via: %s\n", quote("0.0.0.0/0"), quote(n.Gateway4.String()))
	if ep.Addr6.IsValid() {
		fmt.Fprintf(&b, "      - to: %s\n        via: %s\n", quote("::/0"), quote(n.Gateway6.String()))
	}
	if !n.NoDNS {
		fmt.Fprintf(&b, "    nameservers:\n      addresses:\n        - %s\n", quote(n.Gateway4.String()))
	}
	return []byte(b.String())
}

// quote is s as a JSON string, which YAML reads as a double-quoted scalar.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
