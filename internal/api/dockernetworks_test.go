package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestEndpointConfigRefusesPinned: network connect refuses an endpoint configuration
// that pins an address, and takes the one the docker CLI sends without
// one (empty IPAMConfig, null fields) or none at all.
func TestEndpointConfigRefusesPinned(t *testing.T) {
	for body, refused := range map[string]bool{
		``:     false,
		`null`: false,
		`{"IPAMConfig":null,"Links":null,"Aliases":null,"DriverOpts":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":""}`: false,
		`{"IPAMConfig":{"IPv4Address":"","IPv6Address":""}}`:                                                                           false,
		`{"IPAMConfig":{"IPv4Address":"10.85.0.9"}}`:                                                                                   true,
		`{"IPAMConfig":{"IPv6Address":"fd00::9"},"Aliases":["a"]}`:                                                                     true,
	} {
		if _, err := endpointConfig(json.RawMessage(body)); (err != nil) != refused {
			t.Errorf("EndpointConfig %s: %v, want refused %v", body, err, refused)
		}
	}
}

// TestEditEndpoint: a connect adds a network to a created container's
// record (its first network stays first, named by NetworkMode from then
// on; the endpoint's aliases join its aliases), a second connect and a
// disconnect of the first network or of one it is not on are refused
// (for a running container the record's mismatch is no change: the live
// change decides), a disconnect takes the network off again.
func TestEditEndpoint(t *testing.T) {
	rec := &containerRecord{Name: "web", Image: testPinned, RunNetwork: "cove", Config: dockerCreate{Image: "r.example/app:1"}}
	if changed, err := editEndpoint(rec, "back", &dockerEndpointCreate{Aliases: []string{"web", "api"}}, true, false); err != nil || !changed {
		t.Fatalf("connect: %v %v", changed, err)
	}
	sp, err := rec.spec()
	if err != nil || sp.Container.Network != "cove" || !slices.Equal(sp.Container.Networks, []string{"back"}) || !slices.Contains(sp.Container.Aliases, "api") {
		t.Fatalf("the record's spec after connect: %+v, %v", sp.Container, err)
	}
	for _, c := range []struct {
		net              string
		connect, running bool
		want             string
	}{
		{"back", true, false, "on network back already"}, {"cove", true, false, "on network cove already"},
		{"cove", false, false, "cannot leave network cove"}, {"cove", false, true, "cannot leave network cove"},
		{"other", false, false, "not on network other"},
	} {
		if _, err := editEndpoint(rec, c.net, nil, c.connect, c.running); err == nil || !strings.Contains(err.Message, c.want) {
			t.Errorf("editEndpoint(%s, connect %v, running %v) = %v, want %q", c.net, c.connect, c.running, err, c.want)
		}
	}
	for _, c := range []struct {
		net     string
		connect bool
	}{{"back", true}, {"other", false}} {
		if changed, err := editEndpoint(rec, c.net, nil, c.connect, true); err != nil || changed {
			t.Errorf("editEndpoint(%s, connect %v) of a running container = %v %v, want no change", c.net, c.connect, changed, err)
		}
	}
	if changed, err := editEndpoint(rec, "back", nil, false, false); err != nil || !changed {
		t.Fatalf("disconnect: %v %v", changed, err)
	}
	if sp, err := rec.spec(); err != nil || sp.Container.Network != "cove" || len(sp.Container.Networks) != 0 {
		t.Errorf("the record's spec after disconnect: %+v, %v", sp.Container, err)
	}
}
