package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/spec"
)

// dockerNetworkCreate is the body of POST /networks/create, the fields
// cove reads (others, which the docker CLI sends empty, are ignored).
type dockerNetworkCreate struct {
	Name       string
	Driver     string
	Scope      string
	Internal   bool
	Ingress    bool
	ConfigOnly bool
	ConfigFrom *struct{ Network string }
	IPAM       *struct {
		Driver string
		Config []struct {
			Subnet, IPRange, Gateway string
			AuxiliaryAddresses       map[string]string `json:"AuxiliaryAddresses"`
		}
	}
	EnableIPv6 bool
	Options    map[string]string
	Labels     map[string]string
}

// bridgeNameOption is Docker's option that names a network's bridge.
const bridgeNameOption = "com.docker.network.bridge.name"

// createNetworkDocker answers Docker's network create: 201 with the new
// network's Id once its file is written (Networker.CreateNetwork); 400
// for what cove's networks cannot be (another driver, an IP range,
// labels, an option other than the bridge's name, bad subnets), 409 for
// a name that exists.
func (s *Server) createNetworkDocker(c *call) {
	var req dockerNetworkCreate
	if err := json.NewDecoder(c.r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		c.failBody(err)
		return
	}
	settings, berr := networkSettings(req)
	if berr != nil {
		c.fail(berr)
		return
	}
	nw, ok := s.networker(c, "network create")
	if !ok {
		return
	}
	if _, err := nw.CreateNetwork(c.ctx(), req.Name, settings); err != nil {
		c.fail(networkRefusal(err))
		return
	}
	c.reply(http.StatusCreated, map[string]string{"Id": dockerNetworkID(req.Name), "Warning": ""})
}

// removeNetworkDocker answers Docker's network rm: 204 once the network
// is gone (Networker.RemoveNetwork); 403 for the default network and
// for one in use, 404 for an unknown one.
func (s *Server) removeNetworkDocker(c *call) {
	_, n, ok := s.pathNetwork(c)
	if !ok {
		return
	}
	nw, ok := s.networker(c, "network rm")
	if !ok {
		return
	}
	if err := nw.RemoveNetwork(c.ctx(), n.Name); err != nil {
		c.fail(networkRefusal(err))
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// networker is the API's backend as a Networker, or, answering 500 for
// op, false.
func (s *Server) networker(c *call, op string) (Networker, bool) {
	nw, ok := s.backend.(Networker)
	if !ok {
		c.failWith(fmt.Errorf("%s: the API's backend cannot change networks", op))
	}
	return nw, ok
}

// networkSettings are a network file's settings for Docker's create
// request, or why cove cannot make that network.
func networkSettings(req dockerNetworkCreate) (spec.Network, *Error) {
	bad := func(format string, a ...any) (spec.Network, *Error) {
		return spec.Network{}, errorf(CodeBadRequest, "network create: "+fmt.Sprintf(format, a...))
	}
	s := spec.Network{DNS: true, PrivilegedPorts: true, Internal: req.Internal, Bridge: req.Options[bridgeNameOption], IPv6: req.EnableIPv6, Labels: req.Labels}
	switch {
	case req.Name == "":
		return bad("a name is required")
	case req.Driver != "" && req.Driver != "bridge":
		return bad("driver %q is not supported: cove's networks are bridges", req.Driver)
	case req.Scope != "" && req.Scope != "local", req.Ingress, req.ConfigOnly, req.ConfigFrom != nil:
		return bad("only local networks of their own (no scope %q, ingress, config-only or config-from)", req.Scope)
	}
	for k := range req.Options {
		if k != bridgeNameOption {
			return bad("option %q is not supported (only %s)", k, bridgeNameOption)
		}
	}
	if req.IPAM != nil {
		for _, cfg := range req.IPAM.Config {
			if cfg.IPRange != "" || len(cfg.AuxiliaryAddresses) > 0 {
				return bad("--ip-range and --aux-address are not supported: addresses come from the whole subnet")
			}
			p, err := netip.ParsePrefix(cfg.Subnet)
			if err != nil {
				return bad("subnet %q: %v", cfg.Subnet, err)
			}
			sub, gw := &s.Subnet4, &s.Gateway4
			if p.Addr().Is6() {
				sub, gw, s.IPv6 = &s.Subnet6, &s.Gateway6, true
			}
			if *sub != "" {
				return bad("more than one %s subnet", strings.ToUpper(map[bool]string{true: "IPv6", false: "IPv4"}[p.Addr().Is6()]))
			}
			*sub, *gw = cfg.Subnet, cfg.Gateway
		}
	}
	return s, nil
}

// networkRefusal is the Docker error of a refused network create or
// remove: Docker's codes for each reason, else 500.
func networkRefusal(err error) *Error {
	for _, m := range []struct {
		kind error
		code string
	}{
		{declared.ErrNetworkExists, CodeConflict},
		{declared.ErrApplyBusy, CodeConflict},
		{declared.ErrNetworkSettings, CodeBadRequest},
		{declared.ErrDefaultNetwork, CodeForbidden},
		{declared.ErrNetworkInUse, CodeForbidden},
		{network.ErrUnknown, CodeNotFound},
	} {
		if errors.Is(err, m.kind) {
			return errorf(m.code, err.Error())
		}
	}
	return errorf(CodeInternal, err.Error())
}
