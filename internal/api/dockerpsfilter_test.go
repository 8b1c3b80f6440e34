package api

import (
	"testing"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// TestPSFilter: exited compares exit statuses as numbers and only of
// exited containers; health is none without a check and for a container
// never started; network takes a name or a prefix of the network's ID;
// volume a mount's name, source or destination; bad health and exited
// values are a 400; the store is opened only for an ancestor filter.
func TestPSFilter(t *testing.T) {
	noStore := func() (*image.Store, error) {
		t.Error("the store was opened without an ancestor filter")
		return nil, nil
	}
	ran := Workload{Workload: supervisor.Workload{Name: "ran", ActiveState: "inactive", ExitCode: 3}}
	made := Workload{Workload: supervisor.Workload{Name: "made", ActiveState: createdState}}
	checked := &spec.Spec{Health: &spec.Health{}}
	d := dockerSummary{State: "exited", Mounts: []dockerMount{{Name: "vol", Source: "/var/lib/cove/volumes/vol/_data", Destination: "/data"}}}
	d.HostConfig.NetworkMode = "web"
	for _, c := range []struct {
		f    filters
		w    Workload
		sp   *spec.Spec
		want bool
	}{
		{filters{"exited": {"03"}}, ran, nil, true},
		{filters{"exited": {"0"}}, ran, nil, false},
		{filters{"health": {"none"}}, ran, nil, true},
		{filters{"health": {"starting"}}, ran, checked, true},
		{filters{"health": {"none"}}, made, checked, true},
		{filters{"network": {"web"}}, ran, nil, true},
		{filters{"network": {dockerNetworkID("web")[:12]}}, ran, nil, true},
		{filters{"network": {"we"}}, ran, nil, false},
		{filters{"volume": {"vol"}}, ran, nil, true},
		{filters{"volume": {"/data"}}, ran, nil, true},
		{filters{"volume": {"/other"}}, ran, nil, false},
	} {
		p, err := newPSFilter(c.f, noStore)
		if err != nil {
			t.Fatalf("%v: %v", c.f, err)
		}
		if got := p.match(c.w, c.sp, d); got != c.want {
			t.Errorf("%v of %s: %v, want %v", c.f, c.w.Name, got, c.want)
		}
	}
	for _, bad := range []filters{{"health": {"sick"}}, {"exited": {"x"}}} {
		if _, err := newPSFilter(bad, noStore); err == nil || err.Code != CodeBadRequest {
			t.Errorf("%v: %v, want a 400", bad, err)
		}
	}
}
