package main

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

const header = `Generated when the package was built, from the binary's build
information: cove's source (*), the Go standard library it was compiled
with (GOROOT/*) and every Go module linked into it, named where
"go mod vendor" puts it (vendor/MODULE/*), with the copyright lines and
licences of the module's licence files and its NOTICE.`

// field is one field of a paragraph: its value's first line follows the
// name, the others are continuation lines.
type field struct{ name, value string }

// render returns the copyright file of mods, of which the first is cove,
// and the SPDX expression of all their licences. If common is not "", the
// texts of licences with one text are referred to there.
func render(contact, common string, mods []module) (doc, spdx string, err error) {
	var b strings.Builder
	paragraph(&b, []field{
		{"Format", "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"},
		{"Upstream-Name", path.Base(mods[0].path)},
		{"Upstream-Contact", contact},
		{"Source", "https://" + mods[0].path},
		{"Comment", header},
	})
	var texts standalone
	var ids []string
	for _, m := range mods {
		lics, copyrights, notices, err := scan(m)
		if err != nil {
			return "", "", err
		}
		if len(copyrights) == 0 {
			copyrights = []string{"the authors of " + m.path}
		}
		fields := []field{{"Files", m.files}, {"Copyright", strings.Join(copyrights, "\n")}, {"License", texts.licence(lics)}}
		if m.version != "" {
			fields = append(fields, field{"Comment", strings.Join(append([]string{m.path + " " + m.version}, notices...), "\n\n")})
		}
		paragraph(&b, fields)
		for _, l := range lics {
			ids = append(ids, l.ids...)
		}
	}
	for _, t := range texts {
		if common != "" && !templated(t.name) {
			t.text = fmt.Sprintf("On Debian systems, the complete text of the %s licence\nis in %s.", t.name, filepath.Join(common, t.name))
		}
		paragraph(&b, []field{{"License", t.name + "\n" + t.text}})
	}
	slices.Sort(ids)
	return b.String(), strings.Join(slices.Compact(ids), " AND "), nil
}

// standalone are the License paragraphs, one per licence and per distinct
// text of a templated one: the first text of a licence is named by its
// SPDX identifier, the next ones (a BSD licence naming other authors) by
// it and a number: BSD-3-Clause~2.
type standalone []struct{ name, text string }

// licence returns the License field of a module's Files paragraph: the
// names of its texts' standalone paragraphs.
func (s *standalone) licence(lics []licenceFile) string {
	var names []string
	for _, l := range lics {
		names = append(names, s.name(l.ids[0], l.text))
	}
	return strings.Join(unique(names), " and ")
}

func (s *standalone) name(id, text string) string {
	n := 0
	for _, t := range *s {
		if t.name != id && !strings.HasPrefix(t.name, id+"~") {
			continue
		}
		if !templated(id) || sameText(t.text, text) {
			return t.name
		}
		n++
	}
	name := id
	if n > 0 {
		name = fmt.Sprintf("%s~%d", id, n+1)
	}
	*s = append(*s, struct{ name, text string }{name, text})
	return name
}

func sameText(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// paragraph writes fields and a blank line; an empty line of a value is
// written as " ." as the format asks.
func paragraph(b *strings.Builder, fields []field) {
	for _, f := range fields {
		lines := strings.Split(f.value, "\n")
		fmt.Fprintf(b, "%s: %s\n", f.name, lines[0])
		for _, line := range lines[1:] {
			if strings.TrimSpace(line) == "" {
				line = "."
			}
			fmt.Fprintf(b, " %s\n", line)
		}
	}
	b.WriteString("\n")
}
