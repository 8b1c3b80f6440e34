package nettest

import (
	"testing"
)

// TestStatsNetwork: a container on network cove shows, in Docker's stats,
// its eth0 with the bytes and packets of the requests it answered (and
// not lo).
func TestStatsNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	addr := runOnNetwork(t, "statnet", "no")
	needDocker(t)
	for range 3 {
		if got := fetchLocal(t, "http://"+addr.String()+":8080/"); got != "statnet" {
			t.Fatalf("statnet's page: %q", got)
		}
	}
	var s struct {
		Networks map[string]struct {
			RxBytes   uint64 `json:"rx_bytes"`
			RxPackets uint64 `json:"rx_packets"`
			TxBytes   uint64 `json:"tx_bytes"`
			TxPackets uint64 `json:"tx_packets"`
		} `json:"networks"`
	}
	body := dockerCall(t, "GET", "/containers/statnet/stats?stream=false&one-shot=true", nil, 200, &s)
	eth0, ok := s.Networks["eth0"]
	if _, lo := s.Networks["lo"]; !ok || lo || len(s.Networks) != 1 || eth0.RxPackets < 3 || eth0.RxBytes == 0 || eth0.TxPackets < 3 || eth0.TxBytes == 0 {
		t.Errorf("stats of statnet after three requests: networks %+v, want eth0 only with traffic both ways\n%s", s.Networks, body)
	}
}
