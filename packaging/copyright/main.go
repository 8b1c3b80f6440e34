// Command copyright writes the machine-readable copyright file (Debian's
// copyright-format 1.0, DEP-5) of a cove binary and prints the SPDX
// licence expression of the whole. It lists cove's own licence, the Go
// standard library's and that of every module the binary's build
// information names, with the copyright lines and licences found in the
// module's directory in the module cache. A licence file whose text is
// none of the licences it knows fails the run: a new dependency's licence
// must be looked at before cove ships it. With -common-licenses, the
// texts of the licences that have one text (Apache-2.0, MPL-2.0) are
// referred to in that directory, as Debian wants, instead of quoted.
// scripts/package runs it:
//
//	go run ./packaging/copyright -o FILE -contact 'NAME <EMAIL>' [-common-licenses DIR] BINARY
package main

import (
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// A module is a body of source compiled into the binary.
type module struct {
	path, version, dir string
	files              string // the DEP-5 Files pattern
}

func main() {
	out := flag.String("o", "", "write the copyright file here")
	contact := flag.String("contact", "", "the Upstream-Contact: NAME <EMAIL>")
	common := flag.String("common-licenses", "", "refer to the texts of licences with one text in this directory")
	flag.Parse()
	if *out == "" || *contact == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: copyright -o FILE -contact 'NAME <EMAIL>' [-common-licenses DIR] BINARY")
		os.Exit(2)
	}
	if err := run(*out, *contact, *common, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "copyright:", err)
		os.Exit(1)
	}
}

func run(out, contact, common, binary string) error {
	mods, err := linked(binary)
	if err != nil {
		return err
	}
	doc, spdx, err := render(contact, common, mods)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Println(spdx)
	return nil
}

// linked returns what binary was built from: the main module (the current
// directory), the standard library of the Go that runs this command (it
// must be the one that built the binary) and the modules of its build
// information, as `go list -m` finds them in the module cache.
func linked(binary string) ([]module, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	goroot, err := goOutput("env", "GOROOT", "GOVERSION")
	if err != nil {
		return nil, err
	}
	env := strings.Fields(goroot)
	if len(env) != 2 || env[1] != bi.GoVersion {
		return nil, fmt.Errorf("%s was built by %s, this is %q: run the Go that built it", binary, bi.GoVersion, goroot)
	}
	mods := []module{
		{path: bi.Main.Path, dir: ".", files: "*"},
		{path: "the Go standard library", version: bi.GoVersion, dir: env[0], files: "GOROOT/*"},
	}
	query := []string{"list", "-m", "-f", "{{.Path}} {{.Version}} {{.Dir}}"}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		query = append(query, d.Path+"@"+d.Version)
	}
	list, err := goOutput(query...)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("go list -m: %q: no module directory (go mod download)", line)
		}
		mods = append(mods, module{path: f[0], version: f[1], dir: f[2], files: "vendor/" + f[0] + "/*"})
	}
	return mods, nil
}

func goOutput(args ...string) (string, error) {
	out, err := exec.Command("go", args...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, exit.Stderr)
	}
	return string(out), err
}

// licenceName matches the files that hold a licence, noticeName those with
// copyright notices to pass on (Apache-2.0 §4(d) asks for NOTICE).
// Documentation licences (go-digest's LICENSE.docs) do not cover code.
var (
	licenceName = regexp.MustCompile(`(?i)^(licen[cs]e|copying)([.-].*)?$`)
	noticeName  = regexp.MustCompile(`(?i)^(notice|copyright)([.-].*)?$`)
	docsName    = regexp.MustCompile(`(?i)docs`)
)

// A licenceFile is one of a module's licence files, or one licence of a
// file that holds several.
type licenceFile struct {
	name string
	ids  []string
	text string // without its copyright lines
}

// scan reads the licence and notice files of a module's directory.
func scan(m module) (lics []licenceFile, copyrights []string, notices []string, err error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		isLicence, isNotice := licenceName.MatchString(name), noticeName.MatchString(name)
		if e.IsDir() || docsName.MatchString(name) || !isLicence && !isNotice {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.dir, name))
		if err != nil {
			return nil, nil, nil, err
		}
		lines, text := splitCopyright(string(data))
		copyrights = append(copyrights, lines...)
		if isNotice {
			notices = append(notices, strings.TrimSpace(string(data)))
			continue
		}
		for _, part := range licenceParts(text) {
			ids := classify(part)
			if len(ids) == 0 {
				return nil, nil, nil, fmt.Errorf("%s %s: %s: unknown licence (known: %s)", m.path, m.version, name, strings.Join(knownIDs(), ", "))
			}
			lics = append(lics, licenceFile{name: name, ids: ids, text: part})
		}
	}
	if len(lics) == 0 {
		return nil, nil, nil, fmt.Errorf("%s %s: no licence file in %s", m.path, m.version, m.dir)
	}
	lics = withoutCombined(lics)
	for _, l := range lics {
		if len(l.ids) > 1 {
			return nil, nil, nil, fmt.Errorf("%s %s: %s: %s in one text, not separated by a line of dashes", m.path, m.version, l.name, strings.Join(l.ids, ", "))
		}
	}
	return lics, unique(copyrights), notices, nil
}

// separator separates the licences of a file that holds several (a line
// of dashes after an empty line, as in klauspost/compress's LICENSE).
var separator = regexp.MustCompile(`\n[ \t]*\n-{3,}[ \t]*\n`)

// heading titles each licence of a file that holds several, as in
// go.yaml.in/yaml/v3's LICENSE ("#### MIT License ####").
var heading = regexp.MustCompile(`(?m)^#{2,}[ \t][^\n]*[ \t]#{2,}[ \t]*$`)

// licenceParts splits a licence file's text into its licences at its
// separators; a part that holds several licences is split at its
// headings if each then holds one (what comes before the first heading
// introduces them).
func licenceParts(text string) []string {
	var parts []string
	for _, p := range separator.Split(text, -1) {
		titled := heading.Split(p, -1)[1:]
		if len(classify(p)) > 1 && len(titled) > 1 && !slices.ContainsFunc(titled, func(t string) bool { return len(classify(t)) != 1 }) {
			parts = append(parts, titled...)
		} else {
			parts = append(parts, p)
		}
	}
	return parts
}

// withoutCombined drops a file that only combines licences other files
// hold one each (filepath-securejoin's COPYING.md).
func withoutCombined(lics []licenceFile) []licenceFile {
	single := map[string]bool{}
	for _, l := range lics {
		if len(l.ids) == 1 {
			single[l.ids[0]] = true
		}
	}
	return slices.DeleteFunc(lics, func(l licenceFile) bool {
		return len(l.ids) > 1 && !slices.ContainsFunc(l.ids, func(id string) bool { return !single[id] })
	})
}

func unique(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// copyrightLine is a notice such as "Copyright (c) 2009 The Go Authors.";
// not Apache's "Copyright [yyyy] [name of copyright owner]" template.
var copyrightLine = regexp.MustCompile(`(?i)^\s*copyright\s+(\(c\)\s*|©\s*)?\d{4}`)

// splitCopyright returns text's copyright lines and the rest of it.
func splitCopyright(text string) (lines []string, rest string) {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if copyrightLine.MatchString(line) {
			lines = append(lines, strings.TrimSpace(line))
		} else {
			kept = append(kept, strings.TrimRight(line, " \t\r"))
		}
	}
	return lines, strings.TrimSpace(strings.Join(kept, "\n"))
}

// known recognises licences by phrases of their texts (compared in lower
// case with white space collapsed). The BSD licences are told apart per
// occurrence: a file may hold several texts. A templated licence's text
// names its authors, so two modules' texts of it may differ; the others
// have one text.
var known = []licence{
	{"Apache-2.0", false, all("apache license", "version 2.0")},
	{"BSD-2-Clause", true, bsd(false)},
	{"BSD-3-Clause", true, bsd(true)},
	{"ISC", true, oneOf("permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby granted",
		"permission to use, copy, modify, and distribute this software for any purpose with or without fee is hereby granted")},
	{"MIT", true, all("permission is hereby granted, free of charge, to any person obtaining a copy")},
	{"MPL-2.0", false, all("mozilla public license", "version 2.0")},
}

type licence struct {
	id        string
	templated bool
	match     func(text string) bool
}

// templated reports whether a License paragraph's licence is templated.
func templated(name string) bool {
	id, _, _ := strings.Cut(name, "~")
	i := slices.IndexFunc(known, func(k licence) bool { return k.id == id })
	return known[i].templated
}

func knownIDs() []string {
	var ids []string
	for _, k := range known {
		ids = append(ids, k.id)
	}
	return ids
}

func all(phrases ...string) func(string) bool {
	return func(text string) bool {
		return !slices.ContainsFunc(phrases, func(p string) bool { return !strings.Contains(text, p) })
	}
}

func oneOf(phrases ...string) func(string) bool {
	return func(text string) bool {
		return slices.ContainsFunc(phrases, func(p string) bool { return strings.Contains(text, p) })
	}
}

// bsd matches a BSD text with (3-clause) or without (2-clause) the clause
// that forbids using the authors' names for endorsement.
func bsd(endorsement bool) func(string) bool {
	const start = "redistribution and use in source and binary forms"
	return func(text string) bool {
		for _, t := range strings.Split(text, start)[1:] {
			if strings.Contains(t, "endorse or promote products") == endorsement {
				return true
			}
		}
		return false
	}
}

// classify returns the licences whose texts text holds.
func classify(text string) []string {
	norm := strings.ToLower(strings.Join(strings.Fields(text), " "))
	var ids []string
	for _, k := range known {
		if k.match(norm) {
			ids = append(ids, k.id)
		}
	}
	return ids
}
