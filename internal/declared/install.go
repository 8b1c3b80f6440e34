package declared

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/spec"
)

// SetWantedBy returns the spec text data with [install] wanted_by set to
// targets (empty: the workload is not started at boot), keeping the rest
// of the file, comments included, as it is. The result is validated.
func SetWantedBy(file string, data []byte, targets []string) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	entry := "wanted_by = [" + strings.Join(quoted, ", ") + "]"
	header := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "[install]" })
	if header < 0 {
		lines = append(lines, "", "[install]", entry)
	} else {
		lines = setInTable(lines, header, "wanted_by", entry)
	}
	out := []byte(strings.Join(lines, "\n") + "\n")
	s, err := spec.Parse(file, out, "")
	if err != nil {
		return nil, err
	}
	if !slices.Equal(s.Install.WantedBy, targets) && len(s.Install.WantedBy)+len(targets) > 0 {
		return nil, fmt.Errorf("edit %s: [install] is written in a form cove cannot edit; set wanted_by by hand", file)
	}
	return out, nil
}

// setInTable replaces the line of key in the table whose header is at
// index header, or inserts entry right after the header.
func setInTable(lines []string, header int, key, entry string) []string {
	for i := header + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "[") {
			break
		}
		if k, _, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == key {
			lines[i] = entry
			return lines
		}
	}
	return slices.Insert(lines, header+1, entry)
}

// EnableFile rewrites the spec at path with wanted_by set to targets.
func EnableFile(path string, targets []string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", path, err)
	}
	return SetWantedBy(path, data, targets)
}
