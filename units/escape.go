package units

import (
	"fmt"
	"strings"
)

// plainText renders a free-text value (Description=, SyslogIdentifier=).
// Such values are subject to specifier expansion, so '%' is doubled. A
// control character or a trailing backslash (a line continuation) could
// change the meaning of the file, so they are refused.
func plainText(s string) (string, error) {
	if err := checkControl(s); err != nil {
		return "", err
	}
	if strings.HasSuffix(s, `\`) {
		return "", fmt.Errorf("value %q ends in a backslash, which would continue the line", s)
	}
	return strings.ReplaceAll(s, "%", "%%"), nil
}

// quoteWords renders a list of words for directives that split on
// whitespace and unquote C-style (ExecStart=, Environment=, After=): every
// word is double-quoted, '\\' and '"' are escaped, '%' is doubled against
// specifier expansion and '$' is doubled against variable expansion.
func quoteWords(words []string) (string, error) {
	var b strings.Builder
	for i, w := range words {
		if err := checkControl(w); err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for _, r := range EscapeVariables(w) {
			switch r {
			case '\\', '"':
				b.WriteByte('\\')
				b.WriteRune(r)
			case '%':
				b.WriteString("%%")
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	return b.String(), nil
}

// checkControl refuses ASCII control characters, which no unit-file value
// may carry (a newline would start a new directive).
func checkControl(s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("value %q contains control character %U", s, r)
		}
	}
	return nil
}

// unitNames renders unit names for a dependency directive. Such
// directives do not unquote, so names are written bare; anything outside
// systemd's unit-name alphabet is refused, but the instance specifier %i
// (spec.TemplateReleaseUnitName: no name from a spec can hold a %).
func unitNames(names []string) (string, error) {
	for _, n := range names {
		if n == "" || strings.TrimLeft(strings.ReplaceAll(n, "%i", ""), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-@\\") != "" {
			return "", fmt.Errorf("%q is not a valid unit name", n)
		}
	}
	return strings.Join(names, " "), nil
}

// EscapeVariables doubles '$' in a command-line argument: systemd expands
// $VAR and ${VAR} in every command line at exec time, whether the line
// came from a unit file or over D-Bus, and systemd reports the line back
// (ExecStart's D-Bus property) in this escaped form.
func EscapeVariables(arg string) string { return strings.ReplaceAll(arg, "$", "$$") }

// UnescapeVariables is the inverse of EscapeVariables: the argument as the
// process receives it.
func UnescapeVariables(arg string) string { return strings.ReplaceAll(arg, "$$", "$") }
