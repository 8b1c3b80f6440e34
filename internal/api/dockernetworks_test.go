package api

import (
	"encoding/json"
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
