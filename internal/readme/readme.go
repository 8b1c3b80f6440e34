// Package readme reads the spec reference of cove's README.md, the
// tables under "### Reference": for each row, the keys it documents, their
// type, default and meaning. spec's tests check that it documents every
// key of the key table and no other; packaging/man writes it into
// cove.toml(5). It is pure: it parses the text it is given.
package readme

import (
	"regexp"
	"strings"
)

// Row is one row of the reference: the keys its first column names
// ("`a.b`, `c`" names a.b and a.c; "`[[x]]` `y`" names x and x[].y) and
// its other columns as written (Markdown).
type Row struct {
	Keys                   []string
	Type, Default, Meaning string
}

// heading starts the reference; the next heading ends it.
const heading = "### Reference"

// codeSpan matches `text`.
var codeSpan = regexp.MustCompile("`([^`]+)`")

// Reference returns the rows of readme's reference tables, in order.
func Reference(readme string) []Row {
	_, ref, _ := strings.Cut(readme, heading)
	ref, _, _ = strings.Cut(ref, "\n#")
	var rows []Row
	for _, line := range strings.Split(ref, "\n") {
		cells := splitRow(line)
		if len(cells) < 4 || !strings.Contains(cells[0], "`") {
			continue
		}
		rows = append(rows, Row{Keys: keysOf(cells[0]), Type: cells[1], Default: cells[2], Meaning: strings.Join(cells[3:], "|")})
	}
	return rows
}

// splitRow splits a Markdown table row into its trimmed cells; an escaped
// \| stays in its cell. A line that is no row gives none.
func splitRow(line string) []string {
	if !strings.HasPrefix(line, "|") {
		return nil
	}
	line = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|")
	parts := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(p, "\x00", `\|`))
	}
	return parts
}

// keysOf returns the keys a row's first column names.
func keysOf(cell string) []string {
	var keys []string
	base := ""
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		n := m[1]
		switch {
		case strings.HasPrefix(n, "[["):
			n = strings.Trim(n, "[]")
			base = n + "[]"
		case strings.Contains(n, "."):
			base = n[:strings.LastIndex(n, ".")]
		case base != "":
			n = base + "." + n
		}
		keys = append(keys, n)
	}
	return keys
}

// Of returns the row that documents key path, and false if none names it.
func Of(rows []Row, path string) (Row, bool) {
	for _, r := range rows {
		for _, k := range r.Keys {
			if k == path {
				return r, true
			}
		}
	}
	return Row{}, false
}

// link matches a Markdown link [text](target).
var link = regexp.MustCompile(`\[([^\]]+)\]\([^)]+\)`)

// Plain returns Markdown text as plain text: code spans and links lose
// their marks, an escaped \| is |.
func Plain(md string) string {
	s := link.ReplaceAllString(md, "$1")
	s = codeSpan.ReplaceAllString(s, "$1")
	return strings.ReplaceAll(s, `\|`, "|")
}
