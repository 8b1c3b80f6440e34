package hostconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
)

// TestRead: a missing file or key is the default network "cove"; host,
// none and network names are taken; bad content is a spec.Errors naming
// the file, the line and column, and the key.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	if s, err := Read(filepath.Join(dir, "absent.toml")); err != nil || s.RunNetwork != "cove" {
		t.Fatalf("missing file: %+v, %v; want network cove", s, err)
	}
	for _, tc := range []struct {
		name, content, want, err string
	}{
		{"empty", "", "cove", ""},
		{"empty run", "[run]\n", "cove", ""},
		{"host", "[run]\nnetwork = \"host\"\n", "host", ""},
		{"none", "[run]\nnetwork = \"none\"\n", "none", ""},
		{"named", "# mine\n[run]\nnetwork = \"web.1\"\n", "web.1", ""},
		{"bad name", "[run]\nnetwork = \"Web\"\n", "", `cove.toml:2:1: run.network: invalid network "Web"; allowed: "host", "none" or a network's name`},
		{"wrong type", "[run]\nnetwork = 3\n", "", "cove.toml:2:1: run.network: must be a string"},
		{"unknown key", "[run]\nnetwork = \"host\"\nnetworks = 1\n", "", "cove.toml:3:1: run.networks: unknown key; [run] has network only"},
		{"unknown table", "[build]\n", "", "cove.toml:1:2: build: unknown key; cove.toml has the tables [images] (store) and [run] (network)"},
		{"run not a table", "run = \"cove\"\n", "", `cove.toml:1:1: run: must be a table: [run] with network = "cove"`},
		{"syntax", "[run]\nnetwork = \n", "", "cove.toml:2:"},
		{"store relative", "[images]\nstore = \"images\"\n", "", `cove.toml:2:1: images.store: "images" is not an absolute path`},
		{"store not a string", "[images]\nstore = 1\n", "", "cove.toml:2:1: images.store: must be a string"},
		{"store /", "[images]\nstore = \"/\"\n", "", `cove.toml:2:1: images.store: "/" overlaps`},
		{"store over cove's", "[images]\nstore = \"/var/lib/cove\"\n", "", `cove.toml:2:1: images.store: "/var/lib/cove" overlaps /var/lib/cove/containers`},
		{"store in volumes", "[images]\nstore = \"/var/lib/cove/volumes/x\"\n", "", `cove.toml:2:1: images.store: "/var/lib/cove/volumes/x" overlaps /var/lib/cove/volumes`},
		{"images unknown key", "[images]\nroot = \"/x\"\n", "", "cove.toml:2:1: images.root: unknown key; [images] has store only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "cove.toml")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Read(path)
			if tc.err == "" {
				if err != nil || s.RunNetwork != tc.want {
					t.Errorf("got %+v, %v; want network %q", s, err, tc.want)
				}
				return
			}
			var se spec.Errors
			if !errors.As(err, &se) || !strings.Contains(err.Error(), path+":"+tc.err[len("cove.toml:"):]) {
				t.Errorf("error %v (%T), want a spec.Errors with %q", err, err, tc.err)
			}
		})
	}
}

// TestImageStore: the image store is launch.ImagesDir unless [images]
// store moves it (cleaned).
func TestImageStore(t *testing.T) {
	if s, err := Parse("cove.toml", []byte("[run]\nnetwork = \"host\"\n")); err != nil || s.ImageStore != "/var/lib/cove/images" {
		t.Errorf("default: %+v, %v", s, err)
	}
	if s, err := Parse("cove.toml", []byte("[images]\nstore = \"/srv/cove//images/\"\n")); err != nil || s.ImageStore != "/srv/cove/images" || s.RunNetwork != "cove" {
		t.Errorf("moved: %+v, %v", s, err)
	}
}

// TestImageStoreLenient: a mistake outside [images] does not keep the
// image store from being found (cove run reports it); one inside, or a
// syntax error, does.
func TestImageStoreLenient(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"[run]\nnetwork = \"Web\"\n[images]\nstore = \"/srv/img\"\n": "/srv/img",
		"[build]\n":                   "/var/lib/cove/images",
		"[images]\nstore = \"rel\"\n": "",
		"[images]\nstore = \n":        "",
	} {
		path := filepath.Join(dir, "cove.toml")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ImageStore(path)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q, %v; want %q", content, got, err, want)
		}
	}
	if got, err := ImageStore(filepath.Join(dir, "absent")); err != nil || got != "/var/lib/cove/images" {
		t.Errorf("no file: %q, %v", got, err)
	}
}

// TestReadUnreadable: a settings file that cannot be read is an error
// that says what was read.
func TestReadUnreadable(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(dir) // a directory: read fails with EISDIR
	if err == nil || !strings.Contains(err.Error(), "read cove's host settings: read "+dir) {
		t.Errorf("reading a directory: %v", err)
	}
}
