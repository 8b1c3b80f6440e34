package api

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxLabel bounds a SpecFile's File.
const maxLabel = 4096

// staged are a request's specs written to a private temporary directory,
// so that apply can read them as files, with the way back from those
// files' paths to the client's names for them.
type staged struct {
	dir   string
	paths []string          // the Sources: one file per spec, or dir for an empty list
	names *strings.Replacer // temporary path → client's name
}

// stage writes files to a temporary directory, each as DIR/N/BASE where
// BASE is the base name of its File (which names the workload). With nil
// files nothing is written and paths is empty. A File that cannot name a
// file is a bad_request Error.
func stage(files []SpecFile) (*staged, *Error) {
	if files == nil {
		return &staged{names: strings.NewReplacer()}, nil
	}
	for _, f := range files {
		if err := checkLabel(f.File); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "cove-api-specs-")
	if err != nil {
		return nil, errorf(CodeInternal, fmt.Sprintf("stage specs: %v", err))
	}
	st := &staged{dir: dir}
	var pairs []string
	for i, f := range files {
		p := filepath.Join(dir, strconv.Itoa(i), filepath.Base(f.File))
		if err := writeSpec(p, f.Content); err != nil {
			st.Close()
			return nil, errorf(CodeInternal, fmt.Sprintf("stage spec %s: %v", f.File, err))
		}
		st.paths = append(st.paths, p)
		pairs = append(pairs, p, f.File)
	}
	if len(files) == 0 {
		st.paths = []string{dir}
	}
	st.names = strings.NewReplacer(append(pairs, dir, "(request)")...)
	return st, nil
}

// checkLabel refuses a File that is empty, too long, has control
// characters, or whose base name is not a file name.
func checkLabel(file string) *Error {
	base := filepath.Base(file)
	switch {
	case file == "" || len(file) > maxLabel:
		return errorf(CodeBadRequest, fmt.Sprintf("spec file name %.64q: want 1 to %d bytes", file, maxLabel))
	case strings.ContainsFunc(file, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errorf(CodeBadRequest, fmt.Sprintf("spec file name %.64q: control characters are not allowed", file))
	case base == "." || base == ".." || base == "/":
		return errorf(CodeBadRequest, fmt.Sprintf("spec file name %.64q: want a file name such as web.toml", file))
	}
	return nil
}

// writeSpec writes one staged spec, creating its directory.
func writeSpec(path, content string) error {
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}

// Close removes the staged files.
func (st *staged) Close() {
	if st.dir != "" {
		os.RemoveAll(st.dir)
	}
}

// relabel classifies err and puts the client's file names in place of the
// staged paths, in the message and in every spec problem.
func (st *staged) relabel(err error) *Error {
	e := *asError(err)
	e.Message = st.names.Replace(e.Message)
	e.Errors = append([]ErrorDetail(nil), e.Errors...)
	for i := range e.Errors {
		e.Errors[i].File = st.names.Replace(e.Errors[i].File)
	}
	return &e
}
