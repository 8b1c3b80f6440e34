package userns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/spec"
)

// localSources are the NSS sources whose users and groups the store sees
// without asking glibc: the files it reads itself (files; compat is files
// with NIS's "+" lines, which readRanges skips), and systemd's modules,
// whose users are dynamic ones (61184-65519) or the running containers'
// (machined's, including cove's, recorded already).
var localSources = []string{"files", "compat", "systemd", "mymachines"}

// nssOthers reports whether the passwd or group line of the nsswitch.conf
// at path names a source beyond localSources (ldap, sss, winbind,
// extrausers, ...). A missing file is glibc's default: files only.
func nssOthers(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		db, sources, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(db) != "passwd" && strings.TrimSpace(db) != "group" {
			continue
		}
		for _, s := range strings.Fields(sources) {
			if !strings.HasPrefix(s, "[") && !slices.Contains(localSources, s) { // "[NOTFOUND=return]" is an action
				return true, nil
			}
		}
	}
	return false, sc.Err()
}

// nssHolds reports whether glibc's NSS (getent, program getent) knows a
// user or group with the first or the last but one ID of r, the check
// systemd-nspawn makes of a block it picks (its uid_shift_pick): a whole
// block cannot be asked ID by ID of a directory service.
func nssHolds(getent string, r spec.IDRange) (bool, error) {
	ids := []string{strconv.FormatUint(uint64(r.Base), 10), strconv.FormatUint(uint64(r.Base)+uint64(r.Count)-2, 10)}
	for _, db := range []string{"passwd", "group"} {
		var out, stderr bytes.Buffer
		cmd := exec.Command(getent, append([]string{db}, ids...)...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case out.Len() > 0:
			return true, nil
		case errors.As(err, &exit) && exit.ExitCode() == 2: // a key not found
		case err != nil:
			return false, fmt.Errorf("ask NSS for the IDs %s: %s %s %s: %w %s", r, getent, db, strings.Join(ids, " "), err, strings.TrimSpace(stderr.String()))
		}
	}
	return false, nil
}
