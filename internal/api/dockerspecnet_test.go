package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// TestContainerSpecNetwork: Docker's network mode, endpoint settings and
// port bindings land in container.network, networks, ip and ports as
// cove run's --network, --also-network, --ip and -p would put them; Docker's default network is the
// host's run network ("cove" here); what cove cannot do is refused,
// naming the field. Long because it is one table of cases.
func TestContainerSpecNetwork(t *testing.T) {
	const web = `"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"10.78.0.5"}}}}`
	runSpecCases(t, []specCase{
		{"no network mode", `{}`, networkOf, testRunNetwork, "", ""},
		{"default", `{"HostConfig":{"NetworkMode":"default"}}`, networkOf, testRunNetwork, "", ""},
		{"bridge", `{"HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}`, networkOf, testRunNetwork, "", ""},
		{"none", `{"HostConfig":{"NetworkMode":"none"}}`, networkOf, spec.NetworkNone, "", ""},
		{"host", `{"HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"host":{}}}}`, networkOf, spec.NetworkHost, "", ""},
		{"named", `{"HostConfig":{"NetworkMode":"web"}}`, networkOf, "web", "", ""},
		{"bad name", `{"HostConfig":{"NetworkMode":"Web"}}`, nil, nil, "", `network "Web": want "host", "none", "bridge"`},
		{"another container's", `{"HostConfig":{"NetworkMode":"container:db"}}`, networkOf, "container:db", "", ""},
		{"another container's, with ports", `{"HostConfig":{"NetworkMode":"container:db","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`, nil, nil, "", `network "container:db" shares db's addresses, ports and names: set ports on db`},
		{"another container's, with endpoints", `{"HostConfig":{"NetworkMode":"container:db"},` + web + `}`, nil, nil, "", `NetworkingConfig.EndpointsConfig: HostConfig.NetworkMode "container:db" shares the other container's networks and joins none`},
		{"another container's, with no aliases", `{"HostConfig":{"NetworkMode":"container:db"}}`, aliasesOf, []string(nil), "", ""},
		{"endpoint and address", `{"HostConfig":{"NetworkMode":"web"},` + web + `}`, networkAndIP, []string{"web", "10.78.0.5"}, "", ""},
		{"endpoint without a mode", `{"HostConfig":{"NetworkMode":"default"},` + web + `}`, networkAndIP, []string{"web", "10.78.0.5"}, "", ""},
		{"address on another network", `{"HostConfig":{"NetworkMode":"db"},` + web + `}`, nil, nil, "", `EndpointsConfig["web"].IPAMConfig.IPv4Address: a cove container pins an address on its first network (db) only`},
		{"another network", `{"HostConfig":{"NetworkMode":"db"},"NetworkingConfig":{"EndpointsConfig":{"web":{},"db":{},"metrics":{}}}}`, joinedNetworks, []string{"db", "metrics", "web"}, "", ""},
		{"two endpoints", `{"NetworkingConfig":{"EndpointsConfig":{"web":{},"db":{}}}}`, joinedNetworks, []string{"db", "web"}, "", ""},
		{"another network on the host's", `{"HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"web":{}}}}`, nil, nil, "", `HostConfig.NetworkMode "host" joins no network to add "web" to`},
		{"address on the host's network", `{"HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"host":{"IPAMConfig":{"IPv4Address":"10.78.0.5"}}}}}`, nil, nil, "", "container.ip: an address needs a network"},
		{"ipv6 address, mac", `{"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv6Address":"fd00::5"},"MacAddress":"02:00:00:00:00:01"}}}}`, nil, nil, "",
			`EndpointsConfig["web"].IPAMConfig.IPv6Address (--ip6; a cove container's IPv6 address follows its IPv4 address) is not supported yet; NetworkingConfig.EndpointsConfig["web"].MacAddress`},
		{"aliases", `{"NetworkingConfig":{"EndpointsConfig":{"web":{"Aliases":["www","db"]},"metrics":{"Aliases":["WWW","m"]}}}}`, aliasesOf, []string{"WWW", "m", "db", dockerID("c1")[:12]}, "", ""},
		{"links", `{"HostConfig":{"NetworkMode":"web","Links":["/proj_edge_1:/proj_edge_run_1/edge"]}}`, networkOf, "web", `HostConfig.Links ["/proj_edge_1:/proj_edge_run_1/edge"]: the containers resolve by their names`, ""},
		{"links on the host's network", `{"HostConfig":{"NetworkMode":"host","Links":["db:db"]}}`, nil, nil, "", `HostConfig.Links ["db:db"] on network "host"`},
		{"labels", `{"Labels":{"com.docker.compose.project":"shop"}}`, labelsOf, map[string]string{"com.docker.compose.project": "shop"}, "", ""},
		{"aliases on the host's network", `{"HostConfig":{"NetworkMode":"host"}}`, aliasesOf, []string(nil), "", ""},
		{"ports", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],` +
			`"443":[{"HostIp":"2001:db8::10","HostPort":"8443"},{"HostIp":"0.0.0.0","HostPort":"9443"},{"HostIp":"::","HostPort":"10443"}],"81/tcp":[]}}}`,
			portsField, []string{"[2001:db8::10]:8443:443/tcp", "9443:443/tcp", "10443:443/tcp", "127.0.0.1:5353:53/udp", "8080:80/tcp"}, "", ""},
		{"no host port", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":""}]}}}`, nil, nil, "",
			`HostConfig.PortBindings["80/tcp"]: no HostPort (cove chooses one for -p 80 when the container is created)`},
		{"port range", `{"HostConfig":{"PortBindings":{"80-81/tcp":[{"HostPort":"8080-8081"}]}}}`, nil, nil, "", "port ranges are not supported yet"},
		{"host port range", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080-8081"}]}}}`, nil, nil, "", `HostPort "8080-8081": cove chooses one of the range when the container is created`},
		{"bad host port range", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"9-5"}]}}}`, nil, nil, "", `HostPort "9-5" is not a range LOW-HIGH`},
		{"sctp", `{"HostConfig":{"PortBindings":{"80/sctp":[{"HostPort":"8080"}]}}}`, nil, nil, "", `protocol "sctp" is not supported (tcp and udp are)`},
		{"bad host address", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"localhost","HostPort":"8080"}]}}}`, nil, nil, "", `HostIp "localhost" is not an IP address`},
		{"ipv6 loopback", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"::1","HostPort":"8080"}]}}}`, portsField, []string{"[::1]:8080:80/tcp"}, "", ""},
		{"ipv6 loopback udp", `{"HostConfig":{"PortBindings":{"53/udp":[{"HostIp":"::1","HostPort":"5353"}]}}}`, portsField, []string{"[::1]:5353:53/udp"}, "", ""},
		{"bad host port", `{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"http"}]}}}`, nil, nil, "", `host port: "http" is not a number`},
		{"ports on the host's network", `{"HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"8080"}],"81/tcp":[{"HostPort":""}]}}}`,
			portsField, []string(nil), "Published ports are discarded when using host network mode", ""},
		{"a bad binding on the host's network", `{"HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostIp":"nope"}]}}}`, nil, nil, "", `HostIp "nope" is not an IP address`},
		{"ports without a network", `{"HostConfig":{"NetworkMode":"none","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`, nil, nil, "", "published ports need a network"},
	})
}

func networkOf(s *spec.Spec) any { return s.Container.Network }
func joinedNetworks(s *spec.Spec) any {
	return append([]string{s.Container.Network}, s.Container.Networks...)
}
func networkAndIP(s *spec.Spec) any { return []string{s.Container.Network, s.Container.IP} }
func portsField(s *spec.Spec) any   { return s.Container.Ports }
func aliasesOf(s *spec.Spec) any    { return s.Container.Aliases }
func labelsOf(s *spec.Spec) any     { return s.Container.Labels }

// TestRandomPorts: a binding without a host port (-p 80, -p
// 127.0.0.1::53/udp, HostPort "0") and, with PublishAllPorts (-P), every
// tcp or udp port the request and the image expose without a binding
// (a key without protocol binds tcp) get the port free gives for their
// host side, which avoids the container's own ports; PublishAllPorts is
// cleared; on the host's network, none, or another container's -P
// publishes nothing; a range of host ports (-p 8000-8010:80) gets one of
// its ports; free's failure is the create's (400 for an address not the
// host's, 409 for a range all taken).
func TestRandomPorts(t *testing.T) {
	var asked []string
	next := uint16(40000)
	free := fakePorts(func(p plan.Port, lo, hi int, avoid []plan.Port) (uint16, error) {
		asked = append(asked, fmt.Sprintf("%s %v %d-%d avoiding %d", p.Proto, p.HostAddr, lo, hi, len(avoid)))
		next++
		return next, nil
	})
	var req dockerCreate
	body := `{"ExposedPorts":{"9090/tcp":{}},"HostConfig":{"PublishAllPorts":true,"PortBindings":{` +
		`"80":[{"HostPort":""}],"53/udp":[{"HostIp":"127.0.0.1"}],"443/tcp":[{"HostPort":"8443"}],"22/tcp":[{"HostPort":"0"}],` +
		`"81/tcp":[{"HostPort":"8000-8010"}],"82/tcp":[{"HostPort":"9-5"}]}}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	imageExposed := map[string]struct{}{"443/tcp": {}, "8080/tcp": {}, "80/tcp": {}, "5000/sctp": {}}
	if err := randomPorts(&req, imageExposed, "cove", nil, free); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for key, hbs := range req.HostConfig.PortBindings {
		for _, hb := range hbs {
			got[key] += hb.HostIP + ":" + hb.HostPort
		}
	}
	want := map[string]string{"22/tcp": ":40001", "53/udp": "127.0.0.1:40002", "80": ":40003", "8080/tcp": ":40004", "81/tcp": ":40005",
		"82/tcp": ":9-5", "443/tcp": ":8443", "9090/tcp": ":40006"}
	if !maps.Equal(got, want) || req.HostConfig.PublishAll {
		t.Errorf("bindings %v, PublishAll %v; want %v and false", got, req.HostConfig.PublishAll, want)
	}
	wantAsked := []string{"tcp invalid IP 0-0 avoiding 1", "udp 127.0.0.1 0-0 avoiding 2", "tcp invalid IP 0-0 avoiding 3",
		"tcp invalid IP 0-0 avoiding 4", "tcp invalid IP 8000-8010 avoiding 5", "tcp invalid IP 0-0 avoiding 6"}
	if !slices.Equal(asked, wantAsked) {
		t.Errorf("free was asked %q, want %q", asked, wantAsked)
	}

	for _, net := range []string{spec.NetworkHost, spec.NetworkNone, "container:db"} {
		other := dockerCreate{HostConfig: dockerHostCreate{PublishAll: true}}
		if err := randomPorts(&other, map[string]struct{}{"80/tcp": {}}, net, nil, free); err != nil || len(other.HostConfig.PortBindings) != 0 || other.HostConfig.PublishAll {
			t.Errorf("-P on %s: %v, bindings %v, PublishAll %v; want none", net, err, other.HostConfig.PortBindings, other.HostConfig.PublishAll)
		}
	}
	onHost := dockerCreate{HostConfig: dockerHostCreate{PortBindings: map[string][]dockerPortBinding{"80/tcp": {{HostPort: "8000-8001"}}}}}
	never := fakePorts(func(plan.Port, int, int, []plan.Port) (uint16, error) {
		t.Error("a port chosen on the host's network")
		return 0, nil
	})
	if err := randomPorts(&onHost, nil, spec.NetworkHost, nil, never); err != nil || onHost.HostConfig.PortBindings["80/tcp"][0].HostPort != "8000-8001" {
		t.Errorf("-p 8000-8001:80 on the host's network: %v, %v; want it left for containerSpec to discard", err, onHost.HostConfig.PortBindings)
	}
	for _, c := range []struct {
		err  error
		code string
	}{{errors.New("read the claims"), CodeInternal}, {fmt.Errorf("192.0.2.1: %w", network.ErrNotLocal), CodeBadRequest},
		{fmt.Errorf("from 8000 to 8001: %w", network.ErrNoFreePort), CodeConflict}} {
		full := dockerCreate{HostConfig: dockerHostCreate{PortBindings: map[string][]dockerPortBinding{"80/tcp": {{HostIP: "192.0.2.1"}}}}}
		fail := fakePorts(func(plan.Port, int, int, []plan.Port) (uint16, error) { return 0, c.err })
		if err := randomPorts(&full, nil, "cove", nil, fail); err == nil || err.Code != c.code {
			t.Errorf("free failing with %v: %v, want code %s", c.err, err, c.code)
		}
	}
}

// fakePorts is a portChooser: FreePort asks it for lo and hi 0.
type fakePorts func(p plan.Port, lo, hi int, avoid []plan.Port) (uint16, error)

func (f fakePorts) FreePort(p plan.Port, avoid []plan.Port) (uint16, error) { return f(p, 0, 0, avoid) }

func (f fakePorts) FreePortIn(p plan.Port, lo, hi int, avoid []plan.Port) (uint16, error) {
	return f(p, lo, hi, avoid)
}
