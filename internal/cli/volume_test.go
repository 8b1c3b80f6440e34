package cli

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cove-project/cove/internal/api"
)

// TestParseLabels: --label KEY=VALUE, a bare KEY, none; an empty key is
// a usage error.
func TestParseLabels(t *testing.T) {
	got, err := parseLabels([]string{"team=db", "tier", "a=b=c"})
	if want := map[string]string{"team": "db", "tier": "", "a": "b=c"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("labels: %v, %v", got, err)
	}
	if got, err := parseLabels(nil); got != nil || err != nil {
		t.Errorf("no labels: %v, %v", got, err)
	}
	if _, err := parseLabels([]string{"=x"}); err == nil {
		t.Error("an empty key is accepted")
	}
}

// TestDFRows: cove system df's sums, as docker system df makes them.
func TestDFRows(t *testing.T) {
	var df api.DockerDF
	if err := json.Unmarshal([]byte(`{"LayersSize": 100,
		"Images": [{"Size": 60, "SharedSize": 20, "Containers": 1}, {"Size": 60, "SharedSize": 20, "Containers": 0}],
		"Containers": [{"State": "running", "SizeRw": 5}, {"State": "exited", "SizeRw": 7}],
		"Volumes": [{"Name": "a", "UsageData": {"Size": 3, "RefCount": 1}}, {"Name": "b", "UsageData": {"Size": 4, "RefCount": 0}}]}`), &df); err != nil {
		t.Fatal(err)
	}
	want := []dfRow{
		{what: "Images", total: 2, active: 1, size: 100, reclaimable: 60},
		{what: "Containers", total: 2, active: 1, size: 12, reclaimable: 7},
		{what: "Local Volumes", total: 2, active: 1, size: 7, reclaimable: 4},
	}
	if got := dfRows(df); !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", got, want)
	}
}
