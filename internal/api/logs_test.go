package api

import (
	"context"
	"net/url"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/cove-project/cove/supervisor"
)

// TestLogsQueryRoundTrip: what Client.Logs sends is what the server reads
// back, so cove logs through the API asks for exactly what it asks
// directly.
func TestLogsQueryRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, opt := range []supervisor.LogOptions{
		{},
		{Follow: true, Lines: 3},
		{Lines: supervisor.NoLines, Follow: true},
		{Timestamps: true, Since: at},
		{Since: time.Unix(1, 0), Until: at, Lines: 1},
	} {
		got, err := logOptions(logsQuery(opt))
		if err != nil || !reflect.DeepEqual(got, opt) {
			t.Errorf("%+v: read back as %+v, %v", opt, got, err)
		}
	}
}

// TestDockerLogOptions: Docker's query as the docker CLI sends it.
func TestDockerLogOptions(t *testing.T) {
	q, _ := url.ParseQuery("stdout=1&stderr=1&follow=1&timestamps=1&since=1700000000.123456789&until=1700000100&tail=0")
	opt, stdout, err := dockerLogOptions(q)
	want := supervisor.LogOptions{Follow: true, Timestamps: true, Lines: supervisor.NoLines,
		Since: time.Unix(1700000000, 123456789), Until: time.Unix(1700000100, 0)}
	if err != nil || !stdout || !reflect.DeepEqual(opt, want) {
		t.Errorf("got %+v, %v, %v; want %+v", opt, stdout, err, want)
	}
	q, _ = url.ParseQuery("stderr=1&tail=all&since=0")
	if opt, stdout, err := dockerLogOptions(q); err != nil || stdout || !reflect.DeepEqual(opt, supervisor.LogOptions{}) {
		t.Errorf("stderr only: %+v, %v, %v", opt, stdout, err)
	}
}

// sigBackend records the signal a kill sends.
type sigBackend struct {
	fakeBackend
	got syscall.Signal
}

func (b *sigBackend) Kill(_ context.Context, _ string, sig syscall.Signal) error {
	b.got = sig
	return nil
}

// TestKillOp: a kill sends SIGKILL without a signal parameter, else the
// signal given by name or number.
func TestKillOp(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"": syscall.SIGKILL, "TERM": syscall.SIGTERM, "sighup": syscall.SIGHUP, "15": syscall.SIGTERM, "RTMIN+1": 35} {
		op, err := killOp(url.Values{"signal": {in}})
		if err != nil {
			t.Errorf("signal=%q: %v", in, err)
			continue
		}
		b := &sigBackend{}
		if op(b, context.Background(), "web"); b.got != want {
			t.Errorf("signal=%q sent %d, want %d", in, b.got, want)
		}
	}
	if _, err := killOp(url.Values{"signal": {"BOGUS"}}); err == nil || err.Status() != 400 || err.Message != "Invalid signal: BOGUS" {
		t.Errorf("signal=BOGUS: %v", err)
	}
}
