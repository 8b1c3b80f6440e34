package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// networkRoutes are Docker's network endpoints cove implements: the list,
// an inspection, creating and removing a network (as cove network create
// and rm), connecting a running container to a network and disconnecting
// it. Pruning is answered 501.
func networkRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/networks", need: roleMember, handle: (*Server).networks},
		{method: http.MethodPost, path: "/networks/create", need: roleRoot, handle: (*Server).createNetworkDocker},
		{method: http.MethodGet, path: "/networks/{net}", need: roleMember, handle: (*Server).inspectNetwork},
		{method: http.MethodDelete, path: "/networks/{net}", need: roleRoot, handle: (*Server).removeNetworkDocker},
		{method: http.MethodPost, path: "/networks/{net}/connect", need: roleRoot, handle: (*Server).connectNetwork},
		{method: http.MethodPost, path: "/networks/{net}/disconnect", need: roleRoot, handle: (*Server).disconnectNetwork},
	}
}

// connectBody is the body of POST /networks/{net}/connect and
// /disconnect: the container, and for connect its endpoint's settings,
// of which cove refuses a pinned address (the other fields, which the
// docker CLI sends empty, are ignored).
type connectBody struct {
	Container      string          `json:"Container"`
	EndpointConfig json.RawMessage `json:"EndpointConfig"`
	Force          bool            `json:"Force"`
}

// connectNetwork answers Docker's network connect: 200 once the running
// container has its link on the network (Networker.Connect) and, for a
// container created through Docker's API, its record joins the network
// at its next starts too (running or not: docker-compose connects its
// services' further networks before it starts them); 404 for an unknown
// network or container, 409 for a container that is not running and
// has no record, 400 for a pinned address.
func (s *Server) connectNetwork(c *call) {
	s.connectOrDisconnect(c, true, func(ctx context.Context, nw Networker, net, name string, ep *dockerEndpointCreate) error {
		return nw.Connect(ctx, net, name, ep.aliases())
	})
}

// disconnectNetwork answers Docker's network disconnect
// (Networker.Disconnect), from the record too.
func (s *Server) disconnectNetwork(c *call) {
	s.connectOrDisconnect(c, false, func(ctx context.Context, nw Networker, net, name string, _ *dockerEndpointCreate) error {
		return nw.Disconnect(ctx, net, name)
	})
}

// connectOrDisconnect finds the network and the container of a connect
// or disconnect request and runs op on them if the container runs, then
// changes its record, if it has one.
func (s *Server) connectOrDisconnect(c *call, connect bool, op func(context.Context, Networker, string, string, *dockerEndpointCreate) error) {
	var body connectBody
	if !c.decode(&body) {
		return
	}
	ep, eerr := endpointConfig(body.EndpointConfig)
	if eerr != nil {
		c.fail(eerr)
		return
	}
	_, n, ok := s.pathNetwork(c)
	if !ok {
		return
	}
	ct, ok := s.lookupContainerNamed(c, body.Container)
	switch {
	case !ok:
		return
	case ct.MainPID == 0 && ct.rec == nil:
		c.fail(dockerNotRunning(ct.Name))
		return
	}
	nw, ok := s.networker(c, "network connect")
	if !ok {
		return
	}
	live := func() error {
		if ct.MainPID == 0 {
			return nil
		}
		if err := op(c.ctx(), nw, n.Name, ct.Name, ep); err != nil {
			return errorf(CodeConflict, err.Error())
		}
		return nil
	}
	var err error
	if ct.rec == nil {
		err = live()
	} else { // the record's change is checked before anything changes, and written after
		err = s.records.update(ct.Name, func(rec *containerRecord) (bool, error) {
			changed, eerr := editEndpoint(rec, n.Name, ep, connect, ct.MainPID != 0)
			if eerr != nil {
				return false, eerr
			}
			return changed, live()
		})
	}
	if err != nil {
		c.failWith(err)
		return
	}
	c.w.WriteHeader(http.StatusOK)
}

// editEndpoint adds network net, with the endpoint settings ep, to the
// networks rec's container joins at its starts (connect), or takes it
// off them, and checks the record still makes a spec; it reports whether
// rec changed (the caller writes it). Its first network stays its first
// (NetworkMode names it from then on) and cannot be taken off. For a
// running container (running) a record that has the network already,
// or has it not, is left as it is: the live change decides.
func editEndpoint(rec *containerRecord, net string, ep *dockerEndpointCreate, connect, running bool) (bool, *Error) {
	sp, err := rec.spec()
	if err != nil {
		return false, errorf(CodeInternal, fmt.Sprintf("network connect %s: %v", rec.Name, err))
	}
	first, cfg := sp.Container.Network, &rec.Config
	cfg.HostConfig.NetworkMode = first
	eps := cfg.NetworkingConfig.EndpointsConfig
	if eps == nil {
		eps = map[string]*dockerEndpointCreate{}
		cfg.NetworkingConfig.EndpointsConfig = eps
	}
	key, joined := "", slices.Contains(sp.Container.Networks, net) // key: net's entry among the endpoints, if any
	for k := range eps {
		if dockerNetworkName(k, rec.RunNetwork) == net {
			key = k
		}
	}
	switch {
	case net == first && !connect:
		return false, errorf(CodeConflict, fmt.Sprintf("container %s cannot leave network %s: it is its first (its default route and published ports)", rec.Name, net))
	case connect == (net == first || joined) && running:
		return false, nil
	case connect && (net == first || joined):
		return false, errorf(CodeConflict, fmt.Sprintf("container %s is on network %s already", rec.Name, net))
	case connect:
		eps[net] = ep
	case key == "":
		return false, errorf(CodeConflict, fmt.Sprintf("container %s is not on network %s", rec.Name, net))
	default:
		delete(eps, key)
	}
	if _, err := rec.spec(); err != nil {
		return false, errorf(CodeBadRequest, fmt.Sprintf("network connect %s: %v", rec.Name, err))
	}
	return true, nil
}

// endpointConfig reads a connect's EndpointConfig (absent, null or with
// fields cove does not read: an empty one) and refuses one that pins an
// address: an address on a network joined later comes from its IPAM.
func endpointConfig(raw json.RawMessage) (*dockerEndpointCreate, *Error) {
	ep := &dockerEndpointCreate{}
	if len(raw) > 0 {
		json.Unmarshal(raw, ep) // what does not parse is not read, as Docker ignores it
	}
	if ec := ep.IPAMConfig; ec != nil && (ec.IPv4Address != "" || ec.IPv6Address != "") {
		return nil, errorf(CodeBadRequest, "network connect with a fixed address (--ip, --ip6) is not supported: a network joined after the start gets an address of its pool")
	}
	return ep, nil
}

// dockerNetwork is a network as Docker's network endpoints show it.
type dockerNetwork struct {
	Name       string `json:"Name"`
	ID         string `json:"Id"`
	Created    string `json:"Created"`
	Scope      string `json:"Scope"`
	Driver     string `json:"Driver"`
	EnableIPv4 bool   `json:"EnableIPv4"`
	EnableIPv6 bool   `json:"EnableIPv6"`
	IPAM       struct {
		Driver  string             `json:"Driver"`
		Options map[string]string  `json:"Options"`
		Config  []dockerIPAMConfig `json:"Config"`
	} `json:"IPAM"`
	Internal   bool `json:"Internal"`
	Attachable bool `json:"Attachable"`
	Ingress    bool `json:"Ingress"`
	ConfigFrom struct {
		Network string `json:"Network"`
	} `json:"ConfigFrom"`
	ConfigOnly bool                           `json:"ConfigOnly"`
	Containers map[string]dockerNetworkMember `json:"Containers"`
	Options    map[string]string              `json:"Options"`
	Labels     map[string]string              `json:"Labels"`
}

// dockerIPAMConfig is one subnet of a network's IPAM.Config.
type dockerIPAMConfig struct {
	Subnet  string `json:"Subnet"`
	Gateway string `json:"Gateway"`
}

// dockerNetworkMember is one entry of a network's Containers.
type dockerNetworkMember struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"` // "10.77.0.2/16"
	IPv6Address string `json:"IPv6Address"`
}

// networkFilters are the filter keys GET /networks implements: name (a
// substring), id (a prefix) and label (KEY or KEY=VALUE, all must hold).
var networkFilters = []string{"name", "id", "label"}

// networks answers GET /networks?filters=: every declared network, by
// name; Containers is empty, as in Docker's list (an inspection has them).
func (s *Server) networks(c *call) {
	f, ferr := parseFilters(c.r.URL.Query().Get("filters"), networkFilters)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	v, err := s.opt.Networks.Read()
	if err != nil {
		c.failWith(err)
		return
	}
	out := []dockerNetwork{}
	for _, n := range v.Networks {
		id := dockerNetworkID(n.Name)
		if f.anyOf("name", func(x string) bool { return strings.Contains(n.Name, x) }) && f.anyOf("id", func(x string) bool { return strings.HasPrefix(id, x) }) && f.labelsMatch(n.Labels) {
			out = append(out, s.dockerNetworkOf(n, nil))
		}
	}
	c.reply(http.StatusOK, out)
}

// inspectNetwork answers GET /networks/{name or id}: the network and the
// workloads on it.
func (s *Server) inspectNetwork(c *call) {
	if v, n, ok := s.pathNetwork(c); ok {
		c.reply(http.StatusOK, s.dockerNetworkOf(n, v.Members(n.Name)))
	}
}

// pathNetwork reads the networks and finds the one the path names
// (findNetwork); otherwise it answers and returns false.
func (s *Server) pathNetwork(c *call) (network.View, plan.Network, bool) {
	v, err := s.opt.Networks.Read()
	if err != nil {
		c.failWith(err)
		return v, plan.Network{}, false
	}
	n, ferr := s.findNetwork(v, c.name)
	if ferr != nil {
		c.fail(ferr)
		return v, n, false
	}
	return v, n, true
}

// findNetwork is the network ref names: by name; "bridge" (Docker's
// default network, unless a network has that name) is the host's run
// network (hostconf; the default network when that is host or none);
// else by ID or a unique prefix of one. Otherwise Docker's 404.
func (s *Server) findNetwork(v network.View, ref string) (plan.Network, *Error) {
	if n, ok := v.Network(ref); ok {
		return n, nil
	}
	if ref == "bridge" {
		settings, err := hostconf.Read(s.opt.Settings)
		if err != nil {
			return plan.Network{}, errorf(CodeInternal, fmt.Sprintf("inspect network bridge: %v", err))
		}
		name := settings.RunNetwork
		if name == spec.NetworkHost || name == spec.NetworkNone {
			name = plan.DefaultName
		}
		if n, ok := v.Network(name); ok {
			return n, nil
		}
	}
	var found []plan.Network
	for _, n := range v.Networks {
		if isHex(ref) && strings.HasPrefix(dockerNetworkID(n.Name), ref) {
			found = append(found, n)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return plan.Network{}, errorf(CodeBadRequest, fmt.Sprintf("network %s is ambiguous (%d matches found on ID prefix)", ref, len(found)))
	}
	return plan.Network{}, errorf(CodeNotFound, fmt.Sprintf("network %s not found", ref))
}

// networkCreated is when network n was created: its file's modification
// time, the zero time without one (the default network).
func (s *Server) networkCreated(n plan.Network) time.Time {
	st, err := os.Stat(s.opt.Networks.Catalog.Path(n.Name))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// dockerNetworkOf is n, with members, as Docker shows a network: a local
// bridge with both address families. Created is the time of its file
// (the zero time for the default network without one).
func (s *Server) dockerNetworkOf(n plan.Network, members []network.Member) dockerNetwork {
	d := dockerNetwork{Name: n.Name, ID: dockerNetworkID(n.Name), Created: rfc3339(time.Time{}), Scope: "local", Driver: "bridge",
		EnableIPv4: true, EnableIPv6: !n.NoIPv6, Internal: n.Internal, Containers: map[string]dockerNetworkMember{},
		Options: map[string]string{}, Labels: map[string]string{}}
	maps.Copy(d.Labels, n.Labels)
	if n.Bridge != plan.BridgeName(n.Name) || n.Name == plan.DefaultName { // as Docker: the option only where it was given
		d.Options[bridgeNameOption] = n.Bridge
	}
	d.Created = rfc3339(s.networkCreated(n))
	d.IPAM.Driver = "default"
	for i, sub := range n.Subnets() {
		d.IPAM.Config = append(d.IPAM.Config, dockerIPAMConfig{Subnet: sub.String(), Gateway: n.Gateways()[i].String()})
	}
	for _, m := range members {
		e := endpointOf(m.Endpoint)
		d.Containers[dockerID(m.Workload)] = dockerNetworkMember{Name: m.Workload, EndpointID: dockerEndpointID(n.Name, m.Workload),
			MacAddress: e.MAC, IPv4Address: e.Address4.String(), IPv6Address: plan.Text(e.Address6)}
	}
	return d
}
