package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestRefusePinned: network connect refuses an endpoint configuration
// that pins an address, and takes the one the docker CLI sends without
// one (empty IPAMConfig, null fields) or none at all.
func TestRefusePinned(t *testing.T) {
	for body, refused := range map[string]bool{
		``:     false,
		`null`: false,
		`{"IPAMConfig":null,"Links":null,"Aliases":null,"DriverOpts":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":""}`: false,
		`{"IPAMConfig":{"IPv4Address":"","IPv6Address":""}}`:                                                                           false,
		`{"IPAMConfig":{"IPv4Address":"10.85.0.9"}}`:                                                                                   true,
		`{"IPAMConfig":{"IPv6Address":"fd00::9"},"Aliases":["a"]}`:                                                                     true,
	} {
		if err := refusePinned(json.RawMessage(body)); (err != nil) != refused {
			t.Errorf("EndpointConfig %s: %v, want refused %v", body, err, refused)
		}
	}
}

// TestRecordEndpoint: a connect adds a network to a created container's
// record (its first network stays first, named by NetworkMode from then
// on; the endpoint's aliases join its aliases), a second connect and a
// disconnect of the first network or of one it is not on are refused, a
// disconnect takes the network off again; the record on disk follows.
func TestRecordEndpoint(t *testing.T) {
	s := &Server{records: containerRecords{dir: t.TempDir()}}
	rec := &containerRecord{Name: "web", Image: testPinned, RunNetwork: "cove", Config: dockerCreate{Image: "r.example/app:1"}}
	if err := s.recordEndpoint(rec, "back", json.RawMessage(`{"Aliases":["web","api"]}`), true); err != nil {
		t.Fatal(err)
	}
	got, err := s.records.read("web")
	if err != nil || got == nil {
		t.Fatalf("the record after connect: %v %v", got, err)
	}
	sp, err := got.spec()
	if err != nil || sp.Container.Network != "cove" || !slices.Equal(sp.Container.Networks, []string{"back"}) || !slices.Contains(sp.Container.Aliases, "api") {
		t.Fatalf("the record's spec after connect: %+v, %v", sp.Container, err)
	}
	for _, c := range []struct {
		net     string
		connect bool
		want    string
	}{{"back", true, "on network back already"}, {"cove", true, "on network cove already"}, {"cove", false, "cannot leave network cove"}, {"other", false, "not on network other"}} {
		if err := s.recordEndpoint(got, c.net, nil, c.connect); err == nil || !strings.Contains(err.Message, c.want) {
			t.Errorf("recordEndpoint(%s, connect %v) = %v, want %q", c.net, c.connect, err, c.want)
		}
	}
	if err := s.recordEndpoint(got, "back", nil, false); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.records.read("web"); got == nil {
		t.Fatal("no record after disconnect")
	}
	if sp, err := got.spec(); err != nil || sp.Container.Network != "cove" || len(sp.Container.Networks) != 0 {
		t.Errorf("the record's spec after disconnect: %+v, %v", sp.Container, err)
	}
}
