package api

import (
	"slices"
	"testing"
)

// TestUnsetFields: an update body's fields other than the four cove sets
// are named when they set something (not null, 0, false, "" or empty).
func TestUnsetFields(t *testing.T) {
	body := `{"Memory":1,"NanoCpus":0,"PidsLimit":null,"RestartPolicy":{"Name":"always"},"CpuShares":0,"CpusetCpus":"",` +
		`"BlkioWeightDevice":[],"Ulimits":null,"OomKillDisable":false,"CpuRealtimeRuntime":5,"Devices":[{"PathOnHost":"/dev/x"}]}`
	got, err := unsetFields([]byte(body))
	if want := []string{"CpuRealtimeRuntime", "Devices"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("unsetFields: %q, %v; want %q", got, err, want)
	}
}
