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
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	return setKey(file, data, "install", "wanted_by", "["+strings.Join(quoted, ", ")+"]", func(s *spec.Spec) bool {
		return slices.Equal(s.Install.WantedBy, targets) || len(s.Install.WantedBy)+len(targets) == 0
	})
}

// SetReplicasText returns the spec text data with [service] replicas
// set to n, keeping the rest of the file as it is. The result is
// validated (a spec that cannot run n instances is refused with its
// errors).
func SetReplicasText(file string, data []byte, n int) ([]byte, error) {
	return setKey(file, data, "service", "replicas", strconv.Itoa(n), func(s *spec.Spec) bool { return s.Service.Replicas == n })
}

// setKey returns the spec text data with key = value in [table] (the
// table added at the end if the file has none), the rest of the file as
// it is. The result is validated, and took is false when the parsed spec
// does not hold the value (the table is written in a form this line edit
// cannot change, e.g. inline).
func setKey(file string, data []byte, table, key, value string, took func(*spec.Spec) bool) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	entry := key + " = " + value
	header := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "["+table+"]" })
	if header < 0 {
		lines = append(lines, "", "["+table+"]", entry)
	} else {
		lines = setInTable(lines, header, key, entry)
	}
	out := []byte(strings.Join(lines, "\n") + "\n")
	s, err := spec.Parse(file, out, "")
	if err != nil {
		return nil, err
	}
	if !took(s) {
		return nil, fmt.Errorf("edit %s: [%s] is written in a form cove cannot edit; set %s by hand", file, table, key)
	}
	return out, nil
}

// ReplicasFile returns the spec at path with replicas set to n.
func ReplicasFile(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", path, err)
	}
	return SetReplicasText(path, data, n)
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
