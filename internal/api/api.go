// Package api is cove's HTTP API over a unix socket: a versioned JSON API
// under /v1 and a subset of the Docker Engine API, both answered by a
// helper (cove api serve) that systemd starts on the first connection to
// cove-api.socket and that exits again when idle. Killing it never touches
// a workload: workloads are systemd units of their own.
//
// Every operation goes through a Backend. Local is the one that talks to
// systemd (package supervisor) and applies specs (package apply); the CLI
// uses it when run as root and the server uses it for every request.
// Client is the same Backend over HTTP, which the CLI uses otherwise. So
// the CLI and the API share one implementation of every operation.
//
// The reference of every endpoint is docs/api.md.
package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/cove-project/cove/internal/qmp"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// DefaultHost is where cove-api.socket listens.
const DefaultHost = "unix:///run/cove/api.sock"

// Workload is a workload as cove ps and cove status show it: what systemd
// knows, the health its probes recorded, and, while it runs, its places on
// cove's networks and the ports it publishes.
type Workload struct {
	supervisor.Workload
	Health   string     `json:"health,omitempty"`   // "", starting, healthy or unhealthy
	Networks []Endpoint `json:"networks,omitempty"` // the networks it leases an address of
	// NetworkOf is the container whose network namespace it shares
	// (container.network = "container:NAME"); cove status only.
	NetworkOf string    `json:"network_of,omitempty"`
	Ports     []Port    `json:"ports,omitempty"` // the host ports it publishes
	Image     *RunImage `json:"image,omitempty"` // an image container's image, as its launcher completes it
	Guest     *Guest    `json:"guest,omitempty"` // a running VM's resources, as QEMU tells them
}

// Guest is what QEMU tells of a running VM over QMP.
type Guest struct {
	VCPUs       int           `json:"vcpus"`
	VCPUTime    time.Duration `json:"vcpu_time_ns"` // the vCPU threads' CPU time (their /proc times)
	MemoryBytes uint64        `json:"memory_bytes"` // the guest's RAM
	Disks       []qmp.Drive   `json:"disks"`        // each drive's I/O since QEMU started
}

// RunImage is the image an image container runs and what the container
// runs of it: the spec's values merged with the image's configuration by
// Docker's rules, as the launcher merges them (image.Store.Complete).
type RunImage struct {
	Ref     string   `json:"ref"`     // the name the spec gives
	ID      string   `json:"id"`      // the digest the container was last started on
	Command []string `json:"command"` // ENTRYPOINT + CMD, or what the spec replaced
	Workdir string   `json:"workdir"`
	User    string   `json:"user"` // UID:GID, or the image's user name, resolved in the container
}

// SpecFile is one spec sent in a request body.
type SpecFile struct {
	// File is the client's name for the file, used in error messages. Its
	// base name (NAME.toml) names the workload, as for a file on disk.
	File    string `json:"file"`
	Content string `json:"content"` // the TOML text
}

// SpecsRequest is the body of POST /v1/validate, /v1/diff and /v1/apply.
type SpecsRequest struct {
	// Specs are the specs to work on. For diff and apply, absent (or null)
	// means what the host declares in /etc/cove; an empty list means no
	// specs at all (with prune: remove every declared workload).
	Specs []SpecFile `json:"specs"`
	Prune bool       `json:"prune,omitempty"` // diff and apply only
}

// Change is one workload's line of a plan.
type Change struct {
	Name string   `json:"name"`
	Kind string   `json:"kind"` // added, changed, removed or unchanged
	Keys []string `json:"keys,omitempty"`
}

// PlanResponse is the answer to diff and apply.
type PlanResponse struct {
	Plan []Change `json:"plan"`
	Log  string   `json:"log,omitempty"` // apply: one line per workload started or restarted
}

// ValidSpec names one valid spec in a ValidateResponse.
type ValidSpec struct {
	File string `json:"file"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// ValidateResponse is the answer to a validate whose specs are all valid.
type ValidateResponse struct {
	OK    bool        `json:"ok"`
	Specs []ValidSpec `json:"specs"`
}

// Error codes of /v1 error responses.
const (
	CodeBadRequest       = "bad_request"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "payload_too_large"
	CodeSpecInvalid      = "spec_invalid"
	CodeInternal         = "internal"
	CodeNotImplemented   = "not_implemented"
)

// statusOf is the HTTP status of each error code.
var statusOf = map[string]int{
	CodeBadRequest:       http.StatusBadRequest,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeSpecInvalid:      http.StatusUnprocessableEntity,
	CodeInternal:         http.StatusInternalServerError,
	CodeNotImplemented:   http.StatusNotImplemented,
}

// ErrorDetail is one problem in a spec: the JSON form of a spec.Error.
type ErrorDetail struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Key     string `json:"key"`
	Message string `json:"message"`
}

// Error is the body of every /v1 error response, and the error a Client
// returns for one (except spec_invalid, returned as spec.Errors).
type Error struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Errors  []ErrorDetail `json:"errors,omitempty"` // spec_invalid: every problem
	Log     string        `json:"log,omitempty"`    // apply: what was done before the failure
}

// Error returns the message, which names the operation and the object.
func (e *Error) Error() string { return e.Message }

// Is makes a not_found error match supervisor.ErrNotFound, so that callers
// treat a workload unknown to the API like one unknown to systemd.
func (e *Error) Is(target error) bool {
	return target == supervisor.ErrNotFound && e.Code == CodeNotFound
}

// Status is the HTTP status of the error's code (500 for unknown codes).
func (e *Error) Status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorf builds an Error.
func errorf(code, message string) *Error { return &Error{Code: code, Message: message} }

// specErrors returns every spec problem in err, looking through
// errors.Join trees, and whether err consists of spec problems only.
func specErrors(err error) (spec.Errors, bool) {
	switch e := err.(type) {
	case *spec.Error:
		return spec.Errors{e}, true
	case spec.Errors:
		return e, len(e) > 0
	case interface{ Unwrap() []error }:
		var all spec.Errors
		only := true
		for _, x := range e.Unwrap() {
			es, ok := specErrors(x)
			all = append(all, es...)
			only = only && ok
		}
		return all, only && len(all) > 0
	}
	return nil, false
}

// details converts spec problems to their JSON form.
func details(es spec.Errors) []ErrorDetail {
	out := make([]ErrorDetail, len(es))
	for i, e := range es {
		out[i] = ErrorDetail{File: e.File, Line: e.Line, Col: e.Col, Key: e.Key, Message: e.Msg}
	}
	return out
}

// fromDetails converts JSON spec problems back to spec.Errors.
func fromDetails(ds []ErrorDetail) spec.Errors {
	out := make(spec.Errors, len(ds))
	for i, d := range ds {
		out[i] = &spec.Error{File: d.File, Line: d.Line, Col: d.Col, Key: d.Key, Msg: d.Message}
	}
	return out
}

// asError classifies an error of a Backend operation: unknown workloads
// are not_found, bad specs spec_invalid (with every problem), refused
// systemd transactions conflict, anything else internal. The message is
// the error's own, which names the operation and the object.
func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, supervisor.ErrNotFound):
		return errorf(CodeNotFound, err.Error())
	case isConflict(err):
		return errorf(CodeConflict, err.Error())
	}
	if es, only := specErrors(err); only {
		return &Error{Code: CodeSpecInvalid, Message: err.Error(), Errors: details(es)}
	}
	return errorf(CodeInternal, err.Error())
}
