package launch

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// TestExpandArgs checks that a unit's --config-file FILE stands for the
// arguments ConfigFileText wrote to FILE (newlines, quotes, $ and empty
// strings kept as they are), that any other arguments stand for
// themselves, and that a missing or malformed file is an error naming it.
func TestExpandArgs(t *testing.T) {
	args := []string{"--name", "web", "--env", "A=line\nbreak \"q\" $HOME", "--", "sh", "-c", "", "echo $$"}
	files := map[string][]byte{ConfigFile("web"): ConfigFileText(args), "/bad.json": []byte(`{"a":1}`)}
	read := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	got, err := ExpandArgs(FileArgs(ConfigFile("web")), read)
	if err != nil || !reflect.DeepEqual(got, args) {
		t.Errorf("ExpandArgs(the file) = %q, %v; want %q", got, err, args)
	}
	for _, inline := range [][]string{args, {ConfigFileFlag}, {ConfigFileFlag, "/x", "--"}} {
		if got, err := ExpandArgs(inline, read); err != nil || !reflect.DeepEqual(got, inline) {
			t.Errorf("ExpandArgs(%q) = %q, %v; want them unchanged", inline, got, err)
		}
	}
	if _, err := ExpandArgs(FileArgs("/missing.json"), read); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/missing.json") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := ExpandArgs(FileArgs("/bad.json"), read); err == nil || !strings.Contains(err.Error(), "/bad.json") {
		t.Errorf("a malformed file: %v", err)
	}
	if f := ConfigFile("web"); f != "/run/cove/launch/web.json" || FileOf(FileArgs(f)) != f || FileOf(args) != "" {
		t.Errorf("ConfigFile(web) = %s, FileOf its FileArgs %q", f, FileOf(FileArgs(f)))
	}
}
