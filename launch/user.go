package launch

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// LookupUser resolves an image's user "USER[:GROUP]" (names or numbers,
// as Docker reads them) with the image's /etc/passwd and /etc/group
// contents (nil when a file is missing). A user without a group gets its
// passwd entry's primary group, or 0 for a number with no entry.
func LookupUser(user string, passwd, group []byte) (uid, gid uint32, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err = lookupPasswd(u, passwd)
	if err != nil || !hasGroup {
		return uid, gid, err
	}
	gid, err = lookupGroup(g, group)
	return uid, gid, err
}

// lookupPasswd resolves a user name or number to its uid and primary gid.
func lookupPasswd(u string, passwd []byte) (uid, gid uint32, err error) {
	n, numErr := strconv.ParseUint(u, 10, 32)
	for _, f := range entries(passwd, 4) {
		if f[0] == u || numErr == nil && f[2] == u {
			id, err1 := strconv.ParseUint(f[2], 10, 32)
			g, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				return 0, 0, fmt.Errorf("user %q: malformed /etc/passwd entry", u)
			}
			return uint32(id), uint32(g), nil
		}
	}
	if numErr == nil {
		return uint32(n), 0, nil
	}
	return 0, 0, fmt.Errorf("user %q: no such user in the image's /etc/passwd", u)
}

// lookupGroup resolves a group name or number to its gid.
func lookupGroup(g string, group []byte) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, f := range entries(group, 3) {
		if f[0] == g {
			id, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("group %q: malformed /etc/group entry", g)
			}
			return uint32(id), nil
		}
	}
	return 0, fmt.Errorf("group %q: no such group in the image's /etc/group", g)
}

// entries returns the colon-separated fields of the lines of a passwd or
// group file that have at least min fields.
func entries(data []byte, min int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) >= min {
			out = append(out, f)
		}
	}
	return out
}
