package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/image"
)

// output is how a verb that shows objects prints them, as --json and
// --format (docker's and podman's flag) say: its own table (the
// default, or --format table), JSON (--json, --format json), or a Go
// template run on each object, the same objects that JSON shows
// (--format '{{.Name}} {{.State}}'; with "table " first, in aligned
// columns under a header made of the fields' names).
type output struct {
	json   bool
	format formatValue
}

// outputFlags defines --json and --format on c; the verb's RunE prints
// with the returned output's print, and its own table when print does
// not.
func outputFlags(c *cobra.Command) *output {
	o := &output{}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON (the same as --format json)")
	c.Flags().Var(&o.format, "format", "print with a Go template run on each object, fields as --format '{{json .}}' names them ('{{.Name}}'); json; table (the default); 'table TEMPLATE': aligned, with a header")
	return o
}

// formatValue is the value of --format: the text given and, for a
// template, the template, parsed as the flag is set (so that a bad one
// is a usage error naming the flag).
type formatValue struct {
	text  string
	table bool               // "table TEMPLATE": aligned columns with a header
	tmpl  *template.Template // nil for "", "json" and "table"
}

func (f *formatValue) String() string { return f.text }
func (f *formatValue) Type() string   { return "string" }

// Set parses text: "json", "table", "table TEMPLATE" or a template, in
// which \t and \n stand for a tab and a newline.
func (f *formatValue) Set(text string) error {
	*f = formatValue{text: text}
	body := text
	if rest, ok := strings.CutPrefix(text, "table"); ok && (rest == "" || rest[0] == ' ') {
		f.table, body = true, rest
	}
	body = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.TrimSpace(body))
	if body == "" || body == "json" && !f.table {
		return nil
	}
	t, err := template.New("--format").Funcs(templateFuncs).Option("missingkey=error").Parse(body)
	if err != nil {
		return err
	}
	f.tmpl = t
	return nil
}

// templateFuncs are the functions a --format template may call, besides
// Go's: docker's json, join, lower and upper, and cove's size (bytes as
// cove's tables show them) and ago (a time as cove's tables show it).
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"size":  humanBytes,
	"ago":   ago,
}

// objects reports whether print prints the objects themselves (--json,
// --format), not the command's own table.
func (o *output) objects() bool { return o.json || o.format.text == "json" || o.format.tmpl != nil }

// print writes objects, a slice or one object, to w as --json or
// --format ask and reports true; false: neither asks, the verb prints its
// own table. A template that fails on an object is a usage error, and
// nothing is printed.
func (o *output) print(w io.Writer, objects any) (bool, error) {
	switch {
	case o.json || o.format.text == "json":
		return true, printJSON(w, objects)
	case o.format.tmpl == nil:
		return false, nil
	}
	var buf bytes.Buffer
	if o.format.table {
		buf.WriteString(header(o.format.tmpl) + "\n")
	}
	for _, obj := range each(objects) {
		if err := o.format.tmpl.Execute(&buf, obj); err != nil {
			return true, usageError{fmt.Errorf("--format %q: %w", o.format.text, err)}
		}
		buf.WriteByte('\n')
	}
	if !o.format.table {
		_, err := w.Write(buf.Bytes())
		return true, err
	}
	tw := newTable(w, 2)
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return true, err
	}
	return true, tw.Flush()
}

// each is the elements of objects if it is a slice, else objects alone.
func each(objects any) []any {
	v := reflect.ValueOf(objects)
	if v.Kind() != reflect.Slice {
		return []any{objects}
	}
	out := make([]any, v.Len())
	for i := range out {
		out[i] = v.Index(i).Interface()
	}
	return out
}

// action matches an action of a template and field the last field it
// names.
var (
	action = regexp.MustCompile(`{{-?[^}]*}}`)
	field  = regexp.MustCompile(`\.([A-Za-z_][A-Za-z0-9_]*)`)
)

// header is the header line of a table template: each action replaced
// by the last field it names in capitals ("{{.Name}}\t{{size .Size}}":
// "NAME\tSIZE").
func header(t *template.Template) string {
	return action.ReplaceAllStringFunc(t.Root.String(), func(a string) string {
		names := field.FindAllStringSubmatch(a, -1)
		if len(names) == 0 {
			return ""
		}
		return strings.ToUpper(names[len(names)-1][1])
	})
}

// humanBytes is an integer number of bytes in 1024-based units, as
// cove's tables show sizes ("1.9 MiB").
func humanBytes(n any) (string, error) {
	switch v := reflect.ValueOf(n); {
	case v.CanInt():
		return image.HumanSize(v.Int()), nil
	case v.CanUint():
		return image.HumanSize(int64(v.Uint())), nil
	}
	return "", fmt.Errorf("size: want an integer number of bytes, got %T", n)
}

// ago is the time since t in words, as docker shows it ("3 hours ago");
// "-" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return api.HumanDuration(time.Since(t)) + " ago"
}
