package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/supervisor"
)

// Client is the Backend over the API at a unix socket. Its errors are
// the server's (an *Error, or spec.Errors for spec_invalid), or name the
// socket when it cannot be reached.
type Client struct {
	host string
	hc   *http.Client
}

// NewClient returns a client of the API at host (unix:///PATH).
func NewClient(host string) (*Client, error) {
	path, err := unixPath(host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	return &Client{host: host, hc: &http.Client{Transport: tr}}, nil
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// List returns every workload.
func (c *Client) List(ctx context.Context) ([]Workload, error) {
	return getList[Workload](ctx, c, "/v1/workloads")
}

// ListStates asks for the list without the counters
// (GET /v1/workloads?counters=false).
func (c *Client) ListStates(ctx context.Context) ([]Workload, error) {
	return getList[Workload](ctx, c, "/v1/workloads?counters=false")
}

// getList GETs path, whose answer is a JSON array, and decodes it one
// element at a time. Decoded whole, the array would first be read into
// one buffer that the decoder grows by copying: for cove ps at 1000
// workloads (some 700 kB) about 150 page faults more.
func getList[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	err := c.exchange(ctx, http.MethodGet, path, nil, func(r io.Reader) error {
		dec := json.NewDecoder(r)
		switch t, err := dec.Token(); {
		case err != nil:
			return cutShort(err)
		case t == nil: // null
			return nil
		case t != json.Delim('['):
			return fmt.Errorf("want a JSON array, got %v", t)
		}
		for dec.More() {
			var v T
			if err := dec.Decode(&v); err != nil {
				return cutShort(err)
			}
			out = append(out, v)
		}
		_, err := dec.Token() // ]
		return cutShort(err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Status returns workload name.
func (c *Client) Status(ctx context.Context, name string) (Workload, error) {
	var w Workload
	return w, c.do(ctx, http.MethodGet, workloadPath(name, ""), nil, &w)
}

// Start starts workload name.
func (c *Client) Start(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, workloadPath(name, "start"), nil, nil)
}

// Stop stops workload name.
func (c *Client) Stop(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, workloadPath(name, "stop"), nil, nil)
}

// Restart restarts workload name.
func (c *Client) Restart(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, workloadPath(name, "restart"), nil, nil)
}

// Pause freezes workload name's processes.
func (c *Client) Pause(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, workloadPath(name, "pause"), nil, nil)
}

// Unpause thaws workload name's processes.
func (c *Client) Unpause(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, workloadPath(name, "unpause"), nil, nil)
}

// Kill sends sig to workload name's main process.
func (c *Client) Kill(ctx context.Context, name string, sig syscall.Signal) error {
	q := url.Values{"signal": {strconv.Itoa(int(sig))}}
	return c.do(ctx, http.MethodPost, workloadPath(name, "kill")+"?"+q.Encode(), nil, nil)
}

// Remove stops and unloads workload name.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, workloadPath(name, ""), nil, nil)
}

// Logs copies workload name's journal to w as the server streams it. When
// ctx ends (an interrupted follow) it returns nil, like Local.
func (c *Client) Logs(ctx context.Context, name string, opt supervisor.LogOptions, w io.Writer) error {
	path := workloadPath(name, "logs") + "?" + logsQuery(opt).Encode()
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("logs of %s from the cove API at %s: %w", name, c.host, err)
	case resp.Trailer.Get(errorTrailer) != "":
		return errors.New(resp.Trailer.Get(errorTrailer))
	}
	return nil
}

// logsQuery is the query of a logs request for opt (handlers.go's
// logOptions reads it back).
func logsQuery(opt supervisor.LogOptions) url.Values {
	q := url.Values{}
	for key, set := range map[string]bool{"follow": opt.Follow, "timestamps": opt.Timestamps} {
		if set {
			q.Set(key, "1")
		}
	}
	switch {
	case opt.Lines == supervisor.NoLines:
		q.Set("lines", "none")
	case opt.Lines > 0:
		q.Set("lines", strconv.Itoa(opt.Lines))
	}
	for key, t := range map[string]time.Time{"since": opt.Since, "until": opt.Until} {
		if !t.IsZero() {
			q.Set(key, supervisor.FormatLogTime(t))
		}
	}
	return q
}

// Diff asks for the plan of applying s.
func (c *Client) Diff(ctx context.Context, s Sources) (declared.Plan, error) {
	req, err := request(s)
	if err != nil {
		return nil, err
	}
	var pr PlanResponse
	if err := c.do(ctx, http.MethodPost, "/v1/diff", req, &pr); err != nil {
		return nil, err
	}
	return planOf(pr.Plan), nil
}

// Apply applies s on the server and copies the server's log to log, also
// when it fails.
func (c *Client) Apply(ctx context.Context, s Sources, log io.Writer) (declared.Plan, error) {
	req, err := request(s)
	if err != nil {
		return nil, err
	}
	var pr PlanResponse
	err = c.do(ctx, http.MethodPost, "/v1/apply", req, &pr)
	var e *Error
	if errors.As(err, &e) {
		io.WriteString(log, e.Log)
	}
	if err != nil {
		return nil, err
	}
	io.WriteString(log, pr.Log)
	return planOf(pr.Plan), nil
}

// request reads the spec files s names into a request body. No paths
// leave Specs nil: what the host declares.
func request(s Sources) (SpecsRequest, error) {
	req := SpecsRequest{Prune: s.Prune}
	if len(s.Paths) == 0 {
		return req, nil
	}
	req.Specs = []SpecFile{}
	for _, src := range s.Paths {
		files, err := specPaths(src)
		if err != nil {
			return req, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return req, fmt.Errorf("apply %s: %w", f, err)
			}
			req.Specs = append(req.Specs, SpecFile{File: f, Content: string(data)})
		}
	}
	return req, nil
}

// specPaths is src if it is a file, or the *.toml files of directory src
// (as apply reads Sources).
func specPaths(src string) ([]string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", src, err)
	}
	if !st.IsDir() {
		return []string{src}, nil
	}
	files, err := filepath.Glob(filepath.Join(src, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", src, err)
	}
	return files, nil
}

// workloadPath is /v1/workloads/NAME[/VERB].
func workloadPath(name, verb string) string {
	p := "/v1/workloads/" + url.PathEscape(name)
	if verb != "" {
		p += "/" + verb
	}
	return p
}

// cutShort is err, with io.EOF (an answer that ends before its array
// does, or is empty) made io.ErrUnexpectedEOF.
func cutShort(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// do sends a request with in as its JSON body (if not nil) and decodes
// the answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.exchange(ctx, method, path, in, func(r io.Reader) error {
		if out == nil {
			io.Copy(io.Discard, r) // the status said it all
			return nil
		}
		return json.NewDecoder(r).Decode(out)
	})
}

// exchange sends a request (see send) and, for a successful answer,
// reads its body with decode; a failure is the server's error.
func (c *Client) exchange(ctx context.Context, method, path string, in any, decode func(io.Reader) error) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return c.failure(method, path, resp)
	}
	if err := decode(resp.Body); err != nil {
		return fmt.Errorf("%s %s on the cove API at %s: decode the answer: %w", method, path, c.host, err)
	}
	return nil
}

// send sends a request; in, if not nil, is the JSON body.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode the request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://cove"+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cove API at %s: %w%s", c.host, err, hint(err))
	}
	return resp, nil
}

// hint explains the usual reasons a socket cannot be reached.
func hint(err error) string {
	switch {
	case errors.Is(err, syscall.EACCES):
		return " (only root and members of group " + Group + " may use it)"
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return " (is cove-api.socket running? as root, cove talks to systemd directly)"
	}
	return ""
}

// failure turns an error answer into an error: spec.Errors for
// spec_invalid, else the server's *Error (one made from the status when
// the body is not cove's).
func (c *Client) failure(method, path string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	var e Error
	if json.Unmarshal(body, &e) != nil || e.Code == "" || e.Message == "" {
		return &Error{Code: codeOf(resp.StatusCode), Message: fmt.Sprintf("%s %s on the cove API at %s: %s", method, path, c.host, resp.Status)}
	}
	if e.Code == CodeSpecInvalid && len(e.Errors) > 0 && e.Log == "" {
		return fromDetails(e.Errors)
	}
	return &e
}

// codeOf is the error code of an HTTP status.
func codeOf(status int) string {
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	if status >= 400 && status < 500 {
		return CodeBadRequest
	}
	return CodeInternal
}

// get sends GET path and returns a successful response, whose body the
// caller closes; an unsuccessful one is the server's error.
func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, c.failure(http.MethodGet, path, resp)
	}
	return resp, nil
}
