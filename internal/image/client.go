package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// client talks to one repository on one registry endpoint (a mirror or
// the origin), authenticated for pulling.
type client struct {
	repo name.Repository
	http *http.Client
}

// newClient connects to repo's registry: TLS per the location's settings
// (its CA file besides the system's roots), plain HTTP only for a location
// listed with insecure = true, credentials from kc, and the registry's
// token or basic auth negotiated by go-containerregistry's transport.
func (s *Store) newClient(ctx context.Context, repo name.Repository, kc authn.Keychain) (*client, error) {
	set := s.Registry(repo.RegistryStr())
	base, err := baseTransport(set)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", repo.RegistryStr(), err)
	}
	var opts []name.Option
	if set.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(repo.RegistryStr(), opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", repo.RegistryStr(), err)
	}
	repo = reg.Repo(repo.RepositoryStr())
	auth, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo, err)
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, transport.NewUserAgent(base, "cove"), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connect to registry %s: %w", reg.RegistryStr(), plainHTTPHint(err, reg.RegistryStr()))
	}
	return &client{repo: repo, http: &http.Client{Transport: rt}}, nil
}

// plainHTTPHint says how to allow plain HTTP when err shows the registry
// answered HTTPS with HTTP.
func plainHTTPHint(err error, host string) error {
	msg := err.Error()
	if strings.Contains(msg, "server gave HTTP response to HTTPS client") && !strings.Contains(msg, "insecure = true") {
		return fmt.Errorf("%w (the registry speaks plain HTTP; cove uses it only for a location listed with insecure = true in %s, e.g. [[registry]] location = %q insecure = true)", err, DefaultRegistriesFile, host)
	}
	return err
}

// baseTransport is the HTTP transport under auth for the location set.
func baseTransport(set Registry) (http.RoundTripper, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if set.CAFile != "" {
		pem, err := os.ReadFile(set.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates in it", set.CAFile)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	g := plainHTTPGuard{inner: t, secure: t, location: set.Location, allowed: set.Insecure}
	if set.Insecure { // for the location alone: a token realm or a blob's redirect elsewhere is checked
		g.inner = t.Clone()
		g.inner.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
	}
	return g, nil
}

// plainHTTPGuard refuses every plain-HTTP request unless the location is
// listed as insecure and the request goes to it: go-containerregistry
// itself falls back to HTTP for loopback and RFC 1918 hosts. Requests to
// the location go through inner (which skips the certificate check of a
// location listed insecure), others through secure.
type plainHTTPGuard struct {
	inner, secure http.RoundTripper
	location      string
	allowed       bool
}

// RoundTrip implements http.RoundTripper.
func (g plainHTTPGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !(g.allowed && r.URL.Host == g.location) {
		return nil, fmt.Errorf("plain HTTP to %s refused: only a location listed with insecure = true in %s may use it", r.URL.Host, DefaultRegistriesFile)
	}
	if r.URL.Host != g.location {
		return g.secure.RoundTrip(r)
	}
	return g.inner.RoundTrip(r)
}

// url is the distribution API address of kind ("manifests", "blobs") id
// in the client's repository. The transport switches the scheme to http
// when the registry was reached (as allowed) over plain HTTP.
func (c *client) url(kind, id string) string {
	return "https://" + c.repo.RegistryStr() + "/v2/" + c.repo.RepositoryStr() + "/" + kind + "/" + id
}

// get sends GET url with the given Accept header and returns the
// response when it is 200 OK; otherwise the registry's error.
func (c *client) get(ctx context.Context, url, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// blob opens the blob d of the stated size. A Content-Length that
// differs from size is refused before any byte is read; the caller still
// bounds and verifies the stream.
func (c *client) blob(ctx context.Context, d v1.Hash, size int64) (io.ReadCloser, error) {
	resp, err := c.get(ctx, c.url("blobs", d.String()), "")
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s from %s: %w", d, c.repo, err)
	}
	if n := resp.ContentLength; n >= 0 && n != size {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s from %s: the registry sends %d bytes, the manifest says %d: refused", d, c.repo, n, size)
	}
	return resp.Body, nil
}
