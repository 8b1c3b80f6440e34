package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// apiClient sends requests to the cove API from the host, through the
// sandbox's root.
type apiClient struct {
	sock string
	hc   *http.Client
}

// newClient returns a client with keep-alive connections to sock.
func newClient(sock string) *apiClient {
	return &apiClient{sock: sock, hc: &http.Client{Transport: transport(sock)}}
}

// transport dials sock for every connection.
func transport(sock string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 100,
	}
}

// get sends GET path and reads the whole answer; it returns the time
// taken in milliseconds.
func (c *apiClient) get(path string) (float64, error) {
	start := time.Now()
	resp, err := c.hc.Get("http://cove" + path)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return benchbox.Millis(time.Since(start)), err
}
