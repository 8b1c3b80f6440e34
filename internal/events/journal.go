package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// The MESSAGE_IDs of systemd's catalog (systemd 252, sd-messages.h) that
// PID 1 logs about a unit, with UNIT= naming it.
const (
	idUnitStarted     = "39f53479d3a045ac8e11786248231fbf" // a job finished: "Started …" (JOB_TYPE=start, JOB_RESULT=done)
	idUnitStopped     = "9d1aaa27d60140bd96365438aad20286" // "Stopped …" (JOB_TYPE=stop, or restart for a restart job)
	idUnitProcessExit = "98e322203f7a4ed290d09fe03c09fe15" // "Main process exited, code=…" (EXIT_CODE=, EXIT_STATUS=)
	idUnitSuccess     = "7ad2d189f7e94e70a38c781354912448" // "Deactivated successfully."
	idUnitFailure     = "d9b373ed55a64feb8242e02dbe79a49c" // "Failed with result '…'." (UNIT_RESULT=)
	idUnitOOM         = "fe6faa94e7774663a0da52717891d8ef" // "A process of this unit has been killed by the OOM killer."
)

// The MESSAGE_IDs of cove's own records (internal/eventlog writes them),
// with FieldWorkload naming the workload.
const (
	IDCreated = "2f4d30301a54472092646b53db2aee70" // a workload was created (FieldImage: its image, if any)
	IDRemoved = "b3ba5c1e6836432c94dfaf0f968adb3b" // a workload was removed
	IDHealth  = "84b2e12efbf84c97ab5d360a76e647f7" // a workload's health changed (FieldHealth: Healthy or Unhealthy)
	// IDRenamed: a workload (a container created through Docker's API that
	// has not run) was renamed (FieldWorkload: its new name,
	// FieldOldName: the one it had).
	IDRenamed = "575deede30c24adeb7ccf4a839b21476"
	// IDKilled: SIGKILL ended a workload's main process (EXIT_CODE=killed,
	// EXIT_STATUS=9, as systemd's exit record has them), a death systemd
	// counts as clean for containers with stop stages and logs at debug
	// level only; those stages write it (the post stage's work). A removed
	// run without them (units' systemStops) counts it unclean, and
	// systemd's own exit record has it.
	IDKilled = "358a207a54d74ee0a46e036699256490"
)

// The fields of cove's own records.
const (
	FieldWorkload = "COVE_WORKLOAD"
	FieldImage    = "COVE_IMAGE"
	FieldHealth   = "COVE_HEALTH"
	FieldOldName  = "COVE_OLD_NAME"
	// FieldAutoRemove is "1" in the create record of a workload whose
	// unit goes when its run ends, with no cove process left to record
	// the removal (a detached cove run --rm): its die is also its destroy.
	FieldAutoRemove = "COVE_AUTO_REMOVE"
)

// Fields are the journal fields Mapper reads: the journal need not
// return others (journalctl --output-fields).
var Fields = []string{"MESSAGE_ID", "MESSAGE", "UNIT", "JOB_TYPE", "JOB_RESULT", "EXIT_CODE", "EXIT_STATUS",
	"_PID", "_UID", "_TRANSPORT", FieldWorkload, FieldImage, FieldHealth, FieldAutoRemove, FieldOldName}

// Match selects in the journal (journalctl's match syntax) the records
// Mapper maps: PID 1's of the catalog IDs above, the kernel's, and
// root's of cove's IDs. The journal sets _PID, _UID and _TRANSPORT
// itself, so no other process can forge them.
var Match = []string{
	"_PID=1", "MESSAGE_ID=" + idUnitStarted, "MESSAGE_ID=" + idUnitStopped, "MESSAGE_ID=" + idUnitProcessExit,
	"MESSAGE_ID=" + idUnitSuccess, "MESSAGE_ID=" + idUnitFailure, "MESSAGE_ID=" + idUnitOOM,
	"+", "_TRANSPORT=kernel",
	"+", "_UID=0", "MESSAGE_ID=" + IDCreated, "MESSAGE_ID=" + IDRemoved, "MESSAGE_ID=" + IDHealth, "MESSAGE_ID=" + IDKilled,
	"MESSAGE_ID=" + IDRenamed,
}

// Record is one journal entry: when the journal received it, and its
// fields with text values.
type Record struct {
	Time   time.Time
	Fields map[string]string
}

// ParseRecord reads an entry as journalctl -o json writes it. Fields
// whose value is not one string (binary data, a field given twice) are
// left out: none that Mapper reads is ever one of those.
func ParseRecord(line []byte) (Record, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Record{}, fmt.Errorf("journal entry %.80q: %w", line, err)
	}
	r := Record{Fields: make(map[string]string, len(raw))}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			r.Fields[k] = s
		}
	}
	us, err := strconv.ParseInt(r.Fields["__REALTIME_TIMESTAMP"], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("journal entry %.80q: __REALTIME_TIMESTAMP: %w", line, err)
	}
	r.Time = time.UnixMicro(us)
	return r, nil
}

// Mapper turns records, in the journal's order, into events. What one
// record means can depend on an earlier one, which Mapper keeps:
//
//   - die: PID 1 logs a main process's exit (with its status) only when
//     it counts as a failure, then "Deactivated successfully" or "Failed
//     with result" once the run is over. The run's end is the die event,
//     with the status of the exit logged before it, or 0 after a success
//     (systemd logs clean exits, such as death by SIGTERM on a stop, at
//     debug level only). A run that ends in failure with no exit (a start
//     that timed out, say) had no process to die: no event. A
//     container's death by SIGKILL counts as clean (a stop that needed
//     it must not fail the unit): its status comes from cove's IDKilled
//     record, which the container's stop stages write before the end (a
//     removed run without stop stages counts it unclean: systemd's exit
//     record).
//   - oom: the kernel logs every OOM kill in a memory cgroup (on cgroup
//     v1 and v2; its "oom-kill:" summary names the killed task's cgroup,
//     hence the unit); systemd logs one only on cgroup v2, from the
//     cgroup's memory.events. One oom event is reported per run (from
//     start to start), whichever comes first.
//   - restart: systemd restarts a unit (its restart policy, cove restart,
//     a health check's restart) with a restart job, whose "Stopped" record
//     is the restart event; the start event follows.
//
// Units of health checks and image pulls (cove-NAME-health.service,
// cove-NAME-pull.service) are not workloads; a workload whose own name
// ends in -health or -pull is mistaken for one.
type Mapper struct {
	exits      map[string]int  // workload → exit code of the main process of the run that is ending
	oom        map[string]bool // workload → an oom event was reported for its current run
	autoRemove map[string]bool // workload → created with FieldAutoRemove, its run not ended yet
}

// NewMapper returns a Mapper that has seen no record.
func NewMapper() *Mapper {
	return &Mapper{exits: map[string]int{}, oom: map[string]bool{}, autoRemove: map[string]bool{}}
}

// Map returns the events r means: none, one, or two for the end of a run
// of a workload created with FieldAutoRemove (its die, then its destroy).
// Such a workload's create record must have been seen: read from a later
// point, its end is a die alone.
func (m *Mapper) Map(r Record) []Event {
	e, ok := m.mapOne(r)
	switch {
	case !ok:
		return nil
	case e.Action == Create && r.Fields[FieldAutoRemove] == "1":
		m.autoRemove[e.Name] = true
	case e.Action == Die && m.autoRemove[e.Name]:
		delete(m.autoRemove, e.Name)
		return []Event{e, {Time: e.Time, Type: e.Type, Action: Destroy, Name: e.Name}}
	}
	return []Event{e}
}

// mapOne returns the event r means by itself; false when it means none.
func (m *Mapper) mapOne(r Record) (Event, bool) {
	f := r.Fields
	var action, name string
	var e Event
	switch {
	case f["_TRANSPORT"] == "kernel":
		name, action = oomKilled(f["MESSAGE"]), OOM
	case f["_PID"] == "1":
		if name = workloadOfUnit(f["UNIT"]); name != "" {
			action = m.systemd(name, f)
		}
	case f["_UID"] == "0" && f["MESSAGE_ID"] == IDKilled:
		if code, ok := statusOf(f); ok {
			m.exits[f[FieldWorkload]] = code
		}
	case f["_UID"] == "0":
		name, action = f[FieldWorkload], cove(f)
		e.Image, e.Health, e.OldName = f[FieldImage], f[FieldHealth], f[FieldOldName]
	}
	if name == "" || action == "" {
		return Event{}, false
	}
	e.Time, e.Type, e.Action, e.Name = r.Time, TypeContainer, action, name
	switch action {
	case Start:
		delete(m.oom, name)
	case OOM:
		if m.oom[name] {
			return Event{}, false
		}
		m.oom[name] = true
	case Die:
		code, ok := m.exits[name]
		if !ok && f["MESSAGE_ID"] == idUnitFailure {
			return Event{}, false
		}
		delete(m.exits, name)
		e.ExitCode = &code
	}
	return e, true
}

// systemd returns the action of a PID 1 record f about workload name's
// unit; "" for none. A main process's exit is kept in m.exits.
func (m *Mapper) systemd(name string, f map[string]string) string {
	done := f["JOB_RESULT"] == "done"
	switch f["MESSAGE_ID"] {
	case idUnitStarted:
		if done && f["JOB_TYPE"] == "start" {
			return Start
		}
	case idUnitStopped:
		switch {
		case done && f["JOB_TYPE"] == "stop":
			return Stop
		case done && f["JOB_TYPE"] == "restart":
			return Restart
		}
	case idUnitSuccess, idUnitFailure:
		return Die
	case idUnitOOM:
		return OOM
	case idUnitProcessExit:
		if code, ok := exitCode(f); ok {
			m.exits[name] = code
		}
	}
	return ""
}

// exitCode is the exit status of a main process's exit record, Docker's
// way: the status, or 128+N for a death by signal N.
func exitCode(f map[string]string) (int, bool) {
	if !strings.Contains(f["MESSAGE"], "Main process exited") {
		return 0, false // a control process (ExecStartPre=, ExecStopPost=…)
	}
	return statusOf(f)
}

// statusOf is the exit status in a record f's EXIT_CODE and EXIT_STATUS,
// Docker's way: the status, or 128+N for a death by signal N.
func statusOf(f map[string]string) (int, bool) {
	status, err := strconv.Atoi(f["EXIT_STATUS"])
	if err != nil {
		return 0, false
	}
	switch f["EXIT_CODE"] {
	case "exited":
		return status, true
	case "killed", "dumped":
		return 128 + status, true
	}
	return 0, false
}

// cove returns the action of one of cove's own records f; "" for none.
func cove(f map[string]string) string {
	switch f["MESSAGE_ID"] {
	case IDCreated:
		return Create
	case IDRemoved:
		return Destroy
	case IDRenamed:
		return Rename
	case IDHealth:
		if h := f[FieldHealth]; h == Healthy || h == Unhealthy {
			return Health
		}
	}
	return ""
}

// workloadOfUnit returns the workload whose unit is unit, "" for a unit
// that is no workload's.
func workloadOfUnit(unit string) string {
	name, ok := spec.NameOfUnit(unit)
	if _, _, aux := spec.AuxiliaryName(name); !ok || aux || spec.ValidRef(name) != nil {
		return ""
	}
	return name
}

// oomKilled returns the workload a kernel message reports an OOM kill
// in, "" when it reports none. The kernel's summary of a kill (Linux
// 4.19 and later) is "oom-kill:constraint=…,oom_memcg=PATH,
// task_memcg=PATH,task=COMM,pid=N,uid=N"; the killed task's cgroup path
// ends in …/cove.slice/UNIT (and deeper, for a workload that delegates
// sub-cgroups), under whatever the host nests cove.slice in.
func oomKilled(msg string) string {
	rest, ok := strings.CutPrefix(msg, "oom-kill:")
	if !ok {
		return ""
	}
	for _, kv := range strings.Split(rest, ",") {
		if path, ok := strings.CutPrefix(kv, "task_memcg="); ok {
			parts := strings.Split(path, "/")
			for i, p := range parts[:max(len(parts)-1, 0)] {
				if p == units.Slice {
					return workloadOfUnit(parts[i+1])
				}
			}
		}
	}
	return ""
}
