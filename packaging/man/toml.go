package main

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/buildinfo"
	"github.com/cove-project/cove/internal/readme"
	"github.com/cove-project/cove/spec"
)

// specManPage is cove.toml(5) in roff: the spec files, their layout and
// every key of the schema (spec.Keys) with what ref, the README's
// reference, says of it, dated date.
func specManPage(date time.Time, ref []readme.Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH COVE.TOML 5 %q %q \"cove Manual\"\n", date.Format("Jan 2006"), "cove "+buildinfo.Version())
	b.WriteString(specManIntro)
	for _, k := range spec.Keys() {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffEscape(keyHeading(k)), roffEscape(keyProse(k, ref)+keyDoc(k)))
	}
	b.WriteString(specManEnd)
	return b.String()
}

// specManIntro is cove.toml(5) from its name to the list of keys.
const specManIntro = `.nh
.SH NAME
cove.toml \- cove's spec files: workloads, networks and volumes
.SH SYNOPSIS
.nf
.BI /etc/cove/ NAME .toml
.BI /etc/cove/networks/ NAME .toml
.BI /etc/cove/volumes/ NAME .toml
.fi
.SH DESCRIPTION
A spec is a TOML file that declares one workload (a container or a
virtual machine), one network or one volume, named after the file.
.BR cove (1)
compiles a workload's spec into the systemd unit
\fBcove\-\fINAME\fB.service\fR;
the unit owns the payload's lifecycle, and no cove process stays
resident.
.PP
Every spec starts with
.B version = 1
and a
.BR kind .
Parsing is strict: an unknown key, a wrong type, a malformed or
out\-of\-range value, a relative path or a missing required key is an
error
\fIFILE\fR:\fILINE\fR:\fICOL\fR: \fIKEY\fR: what is wrong, and what is allowed;
every error of the file is listed, the exit status is 2 and nothing is
started.
Names are lower\-case letters, digits and
.BR "_ . \-" ,
at most 64 characters.
.PP
Each key below says its default and meaning as cove's README does
(/usr/share/doc/cove/README.md, "A spec", where the examples are).
.SH FILES
.TP
.BI /etc/cove/ NAME .toml
The workload
.IR NAME :
.B kind = \(dqcontainer\(dq
or
.BR \(dqvm\(dq .
.B cove apply
writes it, and cove's systemd generator renders it into its unit at boot
and on every daemon\-reload.
.TP
.BI /run/cove/launch/ NAME .json
A container's launcher arguments, which its unit's ExecStart= names: the
generator and
.B cove apply
write it, the launcher reads it at every start, so a changed command,
environment or image needs a restart but no daemon\-reload.
.TP
.BI /usr/share/cove/ NAME .toml
A vendor default for workload
.IR NAME ;
the file of the same name in /etc/cove wins.
.TP
.BI /etc/cove/networks/ NAME .toml
The network
.IR NAME :
.B kind = \(dqnetwork\(dq
and a
.B [network]
table;
.B cove network create
writes one.
The default network, cove, needs none.
.TP
.BI /etc/cove/volumes/ NAME .toml
The named volume
.IR NAME :
.B kind = \(dqvolume\(dq
and an optional
.B [volume]
table.
.SH KEYS
Keys are written as dotted paths: the key
.B rootfs
of the table
.B [container]
is
.BR container.rootfs ;
.B []
stands for an element of an array of tables
.RB ( [[container.mount]] ).
`

// specManEnd is cove.toml(5) after the list of keys.
const specManEnd = `.SH EXAMPLE
.EX
version = 1
kind = "container"
description = "static web server"

[container]
image = "registry.example:5000/app/web:1.4"
network = "cove"
ports = ["8080:80"]

[resources]
memory = "256M"

[service]
restart = "on\-failure"
.EE
.SH SEE ALSO
.BR cove (1),
.BR cove\-apply (1),
.BR cove\-validate (1),
.BR cove\-run (1),
.BR cove\-network\-create (1),
.BR cove\-volume\-create (1)
`

// keyHeading is how a spec writes k: a table as [table], an array of
// tables as [[table]], a key as its path.
func keyHeading(k spec.Key) string {
	switch k.Type {
	case spec.TypeTable:
		return "[" + k.Path + "]"
	case spec.TypeTables:
		return "[[" + k.Path + "]]"
	}
	return k.Path
}

// keyProse is what ref says of k, as plain text lines ending in a
// newline: its default and its meaning; "" for a key ref does not name.
func keyProse(k spec.Key, ref []readme.Row) string {
	r, ok := readme.Of(ref, k.Path)
	if !ok {
		return ""
	}
	s := ""
	if d := readme.Plain(r.Default); d != "" && d != "—" {
		s = "Default: " + d + ".\n"
	}
	if m := readme.Plain(r.Meaning); m != "" {
		s += m + "\n"
	}
	return s
}

// kindNames say which files a key of a kind belongs to.
var kindNames = map[string]string{
	spec.KindContainer: "Containers only.",
	spec.KindVM:        "Virtual machines only.",
	spec.KindNetwork:   "Network files only.",
	spec.KindVolume:    "Volume files only.",
}

// keyDoc is what the key table says of k, one sentence a line: its type,
// values or range, an example, the kind it belongs to, whether a change
// reaches a running workload, and the cove run flags that set it.
func keyDoc(k spec.Key) string {
	s := []string{"Type: " + k.Type.String() + "."}
	if len(k.Values) > 0 {
		s = append(s, "One of "+quoteAll(k.Values)+".")
	}
	switch {
	case k.Min == 0 && k.Max == 0:
	case k.Max >= math.MaxInt32:
		s = append(s, fmt.Sprintf("At least %d.", k.Min))
	default:
		s = append(s, fmt.Sprintf("From %d to %d.", k.Min, k.Max))
	}
	if k.Example != "" {
		s = append(s, "Example: "+k.Example+".")
	}
	if n := kindNames[k.Kind]; n != "" {
		s = append(s, n)
	}
	if k.Live {
		s = append(s, "A change reaches the running workload without a restart.")
	}
	for _, f := range k.Flags {
		name := "--" + f.Name
		if f.Short != "" {
			name = "-" + f.Short + ", " + name
		}
		s = append(s, "cove run "+name+": "+f.Usage+".")
	}
	return strings.Join(s, "\n")
}

// quoteAll quotes each value and joins them with commas.
func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// roffEscape makes text safe on roff text lines or as a macro's
// argument: backslashes are printed, hyphens are not hyphenation points
// (\-), a line's leading dot or quote is no request and a double quote
// does not end an argument.
func roffEscape(text string) string {
	text = strings.NewReplacer(`\`, `\e`, "-", `\-`, `"`, `\(dq`).Replace(text)
	return leadingControl.ReplaceAllString(text, `\&$0`)
}

// leadingControl matches a control character that starts a line.
var leadingControl = regexp.MustCompile(`(?m)^[.']`)
