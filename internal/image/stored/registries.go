package stored

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultRegistriesFile holds the registry settings unless told otherwise.
const DefaultRegistriesFile = "/etc/cove/registries.toml"

// Registries are the registry settings, as in registries.toml:
//
//	search = ["registry.example"]        # for names without a registry
//
//	[[registry]]
//	location = "127.0.0.1:5000"          # host[:port]
//	insecure = true                      # plain HTTP and unverified TLS allowed
//	ca_file = "/etc/cove/certs/ca.pem"   # trusted besides the system's roots
//	mirrors = ["mirror.example/cache"]   # tried in order before location
type Registries struct {
	// Search are the registries tried, in order, for a name without a
	// registry host; empty means such names are refused.
	Search []string `toml:"search"`
	// Registry are per-location settings; a location not listed gets
	// verified TLS against the system's roots and no mirrors.
	Registry []Registry `toml:"registry"`
}

// Registry are the settings of one registry location.
type Registry struct {
	// Location is the registry's host[:port], as in image names.
	Location string `toml:"location"`
	// Insecure allows plain HTTP, and TLS without certificate
	// verification, for this location (as podman's insecure = true).
	Insecure bool `toml:"insecure"`
	// CAFile is an absolute path to PEM certificates trusted for it.
	CAFile string `toml:"ca_file"`
	// Mirrors are "host[:port][/path]" prefixes tried, in order, before
	// Location; each mirror's own TLS settings are its own entry's.
	Mirrors []string `toml:"mirrors"`
}

// LoadRegistries reads the registry settings at path. A missing file
// means no settings; unknown keys and malformed values are errors.
func LoadRegistries(path string) (*Registries, error) {
	var r Registries
	md, err := toml.DecodeFile(path, &r)
	if errors.Is(err, fs.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry settings %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("registry settings %s: unknown key %q", path, und[0].String())
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("registry settings %s: %w", path, err)
	}
	return &r, nil
}

// validate checks hosts, mirrors and CA paths, and that each location is
// listed once.
func (r *Registries) validate() error {
	for _, s := range r.Search {
		if err := CheckHost(s); err != nil {
			return fmt.Errorf("search: %w", err)
		}
	}
	var seen []string
	for _, reg := range r.Registry {
		if err := CheckHost(reg.Location); err != nil {
			return fmt.Errorf("registry location: %w", err)
		}
		if slices.Contains(seen, reg.Location) {
			return fmt.Errorf("registry %q is listed twice", reg.Location)
		}
		seen = append(seen, reg.Location)
		if reg.CAFile != "" && !filepath.IsAbs(reg.CAFile) {
			return fmt.Errorf("registry %q: ca_file %q is not an absolute path", reg.Location, reg.CAFile)
		}
		for _, m := range reg.Mirrors {
			host, _, _ := strings.Cut(m, "/")
			if err := CheckHost(host); err != nil {
				return fmt.Errorf("registry %q: mirror: %w", reg.Location, err)
			}
		}
	}
	return nil
}

// CheckHost accepts a bare host[:port] (no scheme, no path).
func CheckHost(h string) error {
	u, err := url.Parse("//" + h)
	if h == "" || err != nil || u.Host != h || strings.ContainsAny(h, "/@") {
		return fmt.Errorf("%q is not a registry host[:port]", h)
	}
	return nil
}

// Settings returns the settings of location (zero when not listed).
func (r *Registries) Settings(location string) Registry {
	for _, reg := range r.Registry {
		if reg.Location == location {
			return reg
		}
	}
	return Registry{Location: location}
}
