package spec

import (
	"errors"
	"fmt"
	"math/big"
	"path"
	"strconv"
	"strings"
	"time"
)

// The syntax of values (users, sizes, ports, paths) and their formatting
// in messages.

// ParseUser parses "UID:GID" or "UID" (then GID = UID); both numeric, at
// most MaxID.
func ParseUser(s string) (User, error) {
	bad := fmt.Errorf(`invalid user %q; must be numeric "UID:GID" or "UID" with IDs from 0 to %d (user names are not resolved)`, s, uint32(MaxID))
	us, gs, found := strings.Cut(s, ":")
	if !found {
		gs = us
	}
	uid, err1 := parseID(us)
	gid, err2 := parseID(gs)
	if err1 != nil || err2 != nil {
		return User{}, bad
	}
	return User{UID: uid, GID: gid, Set: true}, nil
}

// parseID parses a decimal uid or gid in 0..MaxID.
func parseID(s string) (uint32, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxID {
		return 0, errors.New("out of range")
	}
	return uint32(n), nil
}

// sizeRE matches a size: digits, optional fraction, optional unit.
var sizeRE = lazyRegexp(`^([0-9]+(?:\.[0-9]+)?)(K|M|G|T|k|m|g|t|KiB|MiB|GiB|TiB)?$`)

// sizeShift maps a size unit to its power of two.
var sizeShift = map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "kib": 10, "mib": 20, "gib": 30, "tib": 40}

// ParseSize parses a size: an integer number of bytes ("1048576") or a
// number with a 1024-based unit K, M, G or T (also k, m, g, t and KiB,
// MiB, GiB, TiB), e.g. "256M" or "1.5G". Fractions of a byte are
// truncated; a fraction without a unit is an error.
func ParseSize(s string) (uint64, error) {
	bad := fmt.Errorf(`invalid size %q; use an integer number of bytes or a number with a 1024-based unit K, M, G or T (or KiB, MiB, GiB, TiB; k, m, g), such as "256M" or "1.5G"`, s)
	m := sizeRE().FindStringSubmatch(s)
	if m == nil || len(s) > 40 || m[2] == "" && strings.Contains(m[1], ".") {
		return 0, bad
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), sizeShift[strings.ToLower(m[2])])))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsUint64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Uint64(), nil
}

// parseSizeValue converts a TOML size value: a size string or an integer
// number of bytes.
func parseSizeValue(v any) (uint64, error) {
	switch v := v.(type) {
	case string:
		return ParseSize(v)
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("%d is negative; must be a size such as \"256M\" or a number of bytes", v)
		}
		return uint64(v), nil
	}
	return 0, fmt.Errorf(`must be a size string such as "256M" or an integer number of bytes, not %s`, typeName(v))
}

// describeValue formats a size value as written in TOML.
func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// asFloat returns v as a float64 if it is a TOML number.
func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// cleanPath returns p cleaned if it is absolute and has no ".."
// components; otherwise p unchanged, for Validate to report.
func cleanPath(p string) string {
	if !path.IsAbs(p) || hasDotDot(p) {
		return p
	}
	return path.Clean(p)
}

// parsePort parses a decimal port number from 1 to 65535; msg says what
// is wrong otherwise ("%q is not a number", "70000 is out of range ...").
func parsePort(s string) (port int, msg string) {
	if s == "" || len(s) > 10 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Sprintf("%q is not a number", s)
	}
	n, _ := strconv.Atoi(s)
	if msg := checkPort(n); msg != "" {
		return 0, msg
	}
	return n, ""
}

// checkPort returns "" if n is a valid port, else what is wrong.
func checkPort(n int) string {
	if n < 1 || n > 65535 {
		return fmt.Sprintf("%d is out of range; must be 1 to 65535", n)
	}
	return ""
}

// FormatSize formats a number of bytes as ParseSize reads it (see
// formatSize).
func FormatSize(n uint64) string { return formatSize(n) }

// formatSize formats a number of bytes with the largest unit that divides
// it: "512M", "1G", "1536K", or "1000 bytes".
func formatSize(n uint64) string {
	for _, u := range []struct {
		shift uint
		unit  string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkRange returns "" if n is in lo..hi, else what is wrong.
func checkRange(n, lo, hi int64) string {
	if n >= lo && n <= hi {
		return ""
	}
	if hi >= MaxStartBurst {
		return fmt.Sprintf("%d is out of range; must be an integer >= %d", n, lo)
	}
	return fmt.Sprintf("%d is out of range; must be an integer from %d to %d", n, lo, hi)
}

// durationIn returns "" if d is in lo..hi (lo excluded if open), else what
// is wrong.
func durationIn(d, lo, hi time.Duration, open bool) string {
	if (d > lo || !open && d == lo) && d <= hi {
		return ""
	}
	op := ">="
	if open {
		op = ">"
	}
	return fmt.Sprintf("%v is out of range; must be %s %v and <= %v", d, op, lo, formatDuration(hi))
}

// formatDuration formats d like time.Duration.String without zero units:
// "1h" rather than "1h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
