package events

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// readFixture maps the records of a testdata file, as the journal
// returned them for Fields and Match, and returns the events as lines.
func readFixture(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	m := NewMapper()
	var got []string
	for sc.Scan() {
		r, err := ParseRecord(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Map(r) {
			got = append(got, e.String())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMapSystemd252: the records systemd 252 (PID 1 at log level info),
// the kernel (cgroup v1) and cove wrote in a private systemd while
// workloads ran: evfail exits 3 with restart = "on-failure" (1 s) until
// stopped; evoom (memory = "8M") is killed by the kernel's OOM killer;
// evstop ignores SIGTERM and is restarted, then stopped (both times
// killed after its 1 s stop timeout); evok exits 0; evhealth's health
// check passes, then fails twice; evok's create and remove records. The
// health checks' own units, their timer, other units and an OOM kill in
// another cgroup (system.slice/t4.service) are no events. The first
// line is an OOM kill of an earlier evoom (the kernel's buffer, read at
// boot).
func TestMapSystemd252(t *testing.T) {
	want := []string{
		"2026-12-05T08:08:02.121015000Z container oom evoom",
		"2026-12-05T08:08:04.660533000Z container start evfail",
		"2026-12-05T08:08:05.001243000Z container start evhealth",
		"2026-12-05T08:08:05.219714000Z container start evok",
		"2026-12-05T08:08:05.260702000Z container die evok (exitCode=0)",
		"2026-12-05T08:08:05.427800000Z container start evoom",
		"2026-12-05T08:08:05.756030000Z container die evfail (exitCode=3)",
		"2026-12-05T08:08:05.929003000Z container oom evoom",
		"2026-12-05T08:08:05.980559000Z container die evoom (exitCode=137)",
		"2026-12-05T08:08:06.054580000Z container start evstop",
		"2026-12-05T08:08:06.101436000Z container health_status: healthy evhealth",
		"2026-12-05T08:08:06.154317000Z container create evok (image=busybox:latest)",
		"2026-12-05T08:08:06.777970000Z container restart evfail",
		"2026-12-05T08:08:07.082904000Z container start evfail",
		"2026-12-05T08:08:07.868318000Z container health_status: unhealthy evhealth",
		"2026-12-05T08:08:08.107832000Z container die evfail (exitCode=3)",
		"2026-12-05T08:08:09.223628000Z container restart evfail",
		"2026-12-05T08:08:09.542500000Z container start evfail",
		"2026-12-05T08:08:10.581808000Z container die evfail (exitCode=3)",
		"2026-12-05T08:08:11.749859000Z container restart evfail",
		"2026-12-05T08:08:12.098921000Z container start evfail",
		"2026-12-05T08:08:12.523093000Z container die evstop (exitCode=137)",
		"2026-12-05T08:08:12.523131000Z container restart evstop",
		"2026-12-05T08:08:12.716088000Z container start evstop",
		"2026-12-05T08:08:13.161965000Z container die evfail (exitCode=3)",
		"2026-12-05T08:08:14.001070000Z container die evstop (exitCode=137)",
		"2026-12-05T08:08:14.001211000Z container stop evstop",
		"2026-12-05T08:08:14.167049000Z container stop evfail",
		"2026-12-05T08:08:14.286192000Z container destroy evok",
	}
	if got := readFixture(t, "testdata/systemd252.jsonl"); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// record is a record at second sec with fields (KEY=VALUE).
func record(sec int64, fields ...string) Record {
	r := Record{Time: time.Unix(sec, 0), Fields: map[string]string{}}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		r.Fields[k] = v
	}
	return r
}

// TestMapRules: what the fixture cannot show. On cgroup v2 systemd logs
// an OOM kill too, after the kernel: one oom event per run. A death by
// signal is 128+N, also when cove's post stage records it (IDKilled,
// from root only); a run that failed without a main process exit (a
// start that timed out) had no die; a control process's exit is not the
// main process's. Records of PID 1's catalog IDs or cove's from other
// processes or users, an unknown health, a pull unit, and a kernel OOM
// outside cove.slice are no events. A rename (root's record) is the
// rename event with the old name.
func TestMapRules(t *testing.T) {
	const unit = "UNIT=cove-web.service"
	pid1 := []string{"_PID=1", "_UID=0", "_TRANSPORT=journal"}
	rec := func(sec int64, fields ...string) Record { return record(sec, append(slices.Clone(pid1), fields...)...) }
	kernelOOM := record(1, "_TRANSPORT=kernel", "MESSAGE=oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/cove.slice/cove-web.service,task_memcg=/cove.slice/cove-web.service/payload,task=python3,pid=4242,uid=0")
	records := []Record{
		rec(0, "MESSAGE_ID="+idUnitStarted, unit, "JOB_TYPE=start", "JOB_RESULT=done"),
		kernelOOM,
		rec(2, "MESSAGE_ID="+idUnitOOM, unit),
		rec(3, "MESSAGE_ID="+idUnitProcessExit, unit, "MESSAGE=cove-web.service: Control process exited, code=exited, status=1/FAILURE", "EXIT_CODE=exited", "EXIT_STATUS=1"),
		rec(4, "MESSAGE_ID="+idUnitProcessExit, unit, "MESSAGE=cove-web.service: Main process exited, code=dumped, status=11/SEGV", "EXIT_CODE=dumped", "EXIT_STATUS=11"),
		rec(5, "MESSAGE_ID="+idUnitFailure, unit, "UNIT_RESULT=core-dump"),
		rec(6, "MESSAGE_ID="+idUnitOOM, unit), // still the same run
		rec(7, "MESSAGE_ID="+idUnitStarted, unit, "JOB_TYPE=start", "JOB_RESULT=done"),
		rec(8, "MESSAGE_ID="+idUnitOOM, unit),
		rec(9, "MESSAGE_ID="+idUnitFailure, unit, "UNIT_RESULT=timeout"),
		rec(10, "MESSAGE_ID="+idUnitStarted, unit, "JOB_TYPE=start", "JOB_RESULT=failed"),
		record(11, "_PID=4242", "_UID=0", "MESSAGE_ID="+idUnitStarted, unit, "JOB_TYPE=start", "JOB_RESULT=done"),
		record(12, "_PID=4242", "_UID=1000", "MESSAGE_ID="+IDRemoved, FieldWorkload+"=web"),
		record(13, "_PID=4242", "_UID=0", "MESSAGE_ID="+IDHealth, FieldWorkload+"=web", FieldHealth+"=starting"),
		rec(14, "MESSAGE_ID="+idUnitStarted, "UNIT=cove-web-pull.service", "JOB_TYPE=start", "JOB_RESULT=done"),
		record(15, "_TRANSPORT=kernel", "MESSAGE=oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/system.slice/cove-x.service,task_memcg=/system.slice/cove-x.service,task=sh,pid=1,uid=0"),
		record(16, "_PID=4242", "_UID=0", "MESSAGE_ID="+IDHealth, FieldWorkload+"=web", FieldHealth+"=unhealthy"),
		rec(17, "MESSAGE_ID="+idUnitStarted, unit, "JOB_TYPE=start", "JOB_RESULT=done"),
		record(18, "_PID=4242", "_UID=1000", "MESSAGE_ID="+IDKilled, FieldWorkload+"=web", "EXIT_CODE=killed", "EXIT_STATUS=6"),
		record(19, "_PID=4242", "_UID=0", "MESSAGE_ID="+IDKilled, FieldWorkload+"=web", "EXIT_CODE=killed", "EXIT_STATUS=9"),
		rec(20, "MESSAGE_ID="+idUnitSuccess, unit),
		record(21, "_PID=4242", "_UID=0", "MESSAGE_ID="+IDRenamed, FieldWorkload+"=web2", FieldOldName+"=web"),
		record(22, "_PID=4242", "_UID=1000", "MESSAGE_ID="+IDRenamed, FieldWorkload+"=evil", FieldOldName+"=web2"),
	}
	want := []string{
		"1970-01-01T00:00:00.000000000Z container start web",
		"1970-01-01T00:00:01.000000000Z container oom web",
		"1970-01-01T00:00:05.000000000Z container die web (exitCode=139)",
		"1970-01-01T00:00:07.000000000Z container start web",
		"1970-01-01T00:00:08.000000000Z container oom web",
		"1970-01-01T00:00:16.000000000Z container health_status: unhealthy web",
		"1970-01-01T00:00:17.000000000Z container start web",
		"1970-01-01T00:00:20.000000000Z container die web (exitCode=137)",
		"1970-01-01T00:00:21.000000000Z container rename web2 (oldName=web)",
	}
	m := NewMapper()
	var got []string
	for _, r := range records {
		for _, e := range m.Map(r) {
			got = append(got, e.String())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseRecord: text fields are kept, binary and repeated ones left
// out; a record without a time or not JSON is an error.
func TestParseRecord(t *testing.T) {
	r, err := ParseRecord([]byte(`{"__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":[104,105,0],"UNIT":"cove-a.service","X":["a","b"]}`))
	if err != nil || !r.Time.Equal(time.UnixMicro(1700000000123456)) || len(r.Fields) != 2 || r.Fields["UNIT"] != "cove-a.service" {
		t.Errorf("ParseRecord = %+v, %v", r, err)
	}
	for _, bad := range []string{`{"MESSAGE":"x"}`, `not json`} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%s): no error", bad)
		}
	}
}

// TestFilter: docker events' filter keys, values of one key are
// alternatives, keys all apply; a container value names a workload or
// (with ID) a prefix of its ID; bad keys and values are errors.
func TestFilter(t *testing.T) {
	f, err := ParseFilter([]string{"container=web", "container=abc", "event=die", "event=oom", "type=container"})
	if err != nil {
		t.Fatal(err)
	}
	f.ID = func(name string) string { return map[string]string{"db": "abcdef", "web": "012345"}[name] }
	for _, tc := range []struct {
		e    Event
		want bool
	}{
		{Event{Type: TypeContainer, Action: Die, Name: "web"}, true},
		{Event{Type: TypeContainer, Action: OOM, Name: "db"}, true}, // by ID prefix
		{Event{Type: TypeContainer, Action: Start, Name: "web"}, false},
		{Event{Type: TypeContainer, Action: Die, Name: "other"}, false},
	} {
		if got := f.Match(tc.e); got != tc.want {
			t.Errorf("Match(%+v) = %v, want %v", tc.e, got, tc.want)
		}
	}
	if !(Filter{}).Match(Event{Name: "x"}) {
		t.Error("the empty filter does not match")
	}
	for _, bad := range []string{"label=a", "event=kill", "type=image", "container", "event="} {
		if _, err := ParseFilter([]string{bad}); err == nil {
			t.Errorf("ParseFilter(%q): no error", bad)
		}
	}
}

// TestMapAutoRemove: the end of a run of a workload created with
// FieldAutoRemove (a detached cove run --rm) is its die and its destroy;
// another workload's end, and the auto-removed one's next run, are a die
// alone.
func TestMapAutoRemove(t *testing.T) {
	pid1 := func(sec int64, unit string, fields ...string) Record {
		return record(sec, append([]string{"_PID=1", "_UID=0", "_TRANSPORT=journal", "UNIT=" + unit}, fields...)...)
	}
	created := func(sec int64, name string, fields ...string) Record {
		return record(sec, append([]string{"_PID=4242", "_UID=0", "MESSAGE_ID=" + IDCreated, FieldWorkload + "=" + name}, fields...)...)
	}
	var got []string
	m := NewMapper()
	for _, r := range []Record{
		created(0, "tmp", FieldAutoRemove+"=1"),
		created(1, "kept"),
		pid1(2, "cove-tmp.service", "MESSAGE_ID="+idUnitStarted, "JOB_TYPE=start", "JOB_RESULT=done"),
		pid1(3, "cove-kept.service", "MESSAGE_ID="+idUnitSuccess),
		pid1(4, "cove-tmp.service", "MESSAGE_ID="+idUnitSuccess),
		pid1(5, "cove-tmp.service", "MESSAGE_ID="+idUnitSuccess),
	} {
		for _, e := range m.Map(r) {
			got = append(got, e.String())
		}
	}
	want := []string{
		"1970-01-01T00:00:00.000000000Z container create tmp",
		"1970-01-01T00:00:01.000000000Z container create kept",
		"1970-01-01T00:00:02.000000000Z container start tmp",
		"1970-01-01T00:00:03.000000000Z container die kept (exitCode=0)",
		"1970-01-01T00:00:04.000000000Z container die tmp (exitCode=0)",
		"1970-01-01T00:00:04.000000000Z container destroy tmp",
		"1970-01-01T00:00:05.000000000Z container die tmp (exitCode=0)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
