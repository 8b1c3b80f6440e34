package api

import (
	"errors"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/instruction"
)

// TestCommitConfig makes a committed image's configuration by Docker's
// rules: the container's, changed; or the request's, with what it leaves
// out from the container's.
func TestCommitConfig(t *testing.T) {
	ct := v1.Config{User: "app", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"serve"}, Entrypoint: []string{"/init"},
		WorkingDir: "/srv", Labels: map[string]string{"a": "1"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"}
	tests := []struct {
		name    string
		body    *dockerCreate
		changes []string
		want    v1.Config
	}{
		{"the container's", nil, nil, ct},
		{"changed", nil, []string{`ENV A=2 B=$A`, `EXPOSE 53/udp`, `CMD ["run"]`, `LABEL b=2`},
			v1.Config{User: "app", Env: []string{"PATH=/bin", "A=2", "B=1"}, Cmd: []string{"run"}, Entrypoint: []string{"/init"}, WorkingDir: "/srv",
				Labels: map[string]string{"a": "1", "b": "2"}, ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}, StopSignal: "SIGQUIT"}},
		{"a new entrypoint drops the command", nil, []string{`ENTRYPOINT ["/other"]`},
			v1.Config{User: "app", Env: ct.Env, Entrypoint: []string{"/other"}, WorkingDir: "/srv", Labels: ct.Labels, ExposedPorts: ct.ExposedPorts, StopSignal: "SIGQUIT"}},
		{"a body, filled from the container", &dockerCreate{Env: []string{"A=3"}, Cmd: strSlice{"x"}, User: "root"}, nil,
			v1.Config{User: "root", Env: []string{"A=3", "PATH=/bin"}, Cmd: []string{"x"}, Entrypoint: []string{"/init"}, WorkingDir: "/srv",
				Labels: ct.Labels, ExposedPorts: ct.ExposedPorts, StopSignal: "SIGQUIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := commitConfig(ct, tt.body, tt.changes)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if !reflect.DeepEqual(ct.Env, []string{"PATH=/bin", "A=1"}) || len(ct.Labels) != 1 || len(ct.ExposedPorts) != 1 {
		t.Errorf("the container's configuration changed: %+v", ct)
	}
	ct.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "/check"}, Retries: 3}
	got, err := commitConfig(ct, &dockerCreate{Healthcheck: &dockerHealthcheck{Interval: int64(time.Second)}}, nil)
	if want := (v1.HealthConfig{Test: []string{"CMD", "/check"}, Interval: time.Second, Retries: 3}); err != nil || !reflect.DeepEqual(*got.Healthcheck, want) {
		t.Errorf("a body's health check interval over the container's check: %+v, %v; want %+v", got.Healthcheck, err, want)
	}
	if _, err := commitConfig(ct, nil, []string{"RUN true"}); !errors.Is(err, instruction.ErrInvalid) {
		t.Errorf("RUN: got %v, want ErrInvalid", err)
	}
}
