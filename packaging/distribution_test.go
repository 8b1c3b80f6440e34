//go:build linux

package packaging

import (
	"archive/tar"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// maintainer is the deb's Maintainer, the rpm's Packager and the author of
// both changelogs.
const maintainer = "cove maintainers <cove-maintainers@lists.cove-project.org>"

// TestLint runs lintian on the deb and rpmlint on the rpm: neither may
// report an error or a warning. packaging/deb/lintian-overrides and
// packaging/rpm/rpmlint.toml say why each override is there.
func TestLint(t *testing.T) {
	deb, rpm := pkg(t, "deb", v1), pkg(t, "rpm", v1)
	need(t, "lintian", "rpmlint")
	for _, c := range []struct {
		tool string
		args []string
	}{
		{"lintian", []string{"--fail-on", "error,warning", deb}},
		{"rpmlint", []string{"--strict", "-c", "rpm/rpmlint.toml", rpm}},
	} {
		t.Run(c.tool, func(t *testing.T) {
			t.Parallel()
			output(t, c.tool, c.args...)
		})
	}
}

// TestCopyright checks the copyright files (Debian's copyright-format 1.0)
// against the packaged binary: a Files paragraph for cove, the Go standard
// library and each module linked into it, a stand-alone License
// paragraph for each licence named, and the rpm's License tag naming them
// all. The deb refers to Debian's copy of the Apache-2.0 text, the rpm
// quotes it.
func TestCopyright(t *testing.T) {
	deb, rpm := pkg(t, "deb", v1), pkg(t, "rpm", v1)
	need(t, "rpm2archive")
	bi, err := buildinfo.Read(strings.NewReader(fileIn(t, exec.Command("dpkg-deb", "--fsys-tarfile", deb), "", "./usr/bin/cove")))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"*", "GOROOT/*"}
	for _, d := range bi.Deps {
		wantFiles = append(wantFiles, "vendor/"+d.Path+"/*")
	}
	slices.Sort(wantFiles)

	debText := fileIn(t, exec.Command("dpkg-deb", "--fsys-tarfile", deb), "", "./usr/share/doc/cove/copyright")
	rpmText := fileIn(t, exec.Command("rpm2archive", "-n", "-"), rpm, "./usr/share/licenses/cove/copyright")
	for name, text := range map[string]string{"deb": debText, "rpm": rpmText} {
		files, licences := paragraphs(t, name, text)
		if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, wantFiles) {
			t.Errorf("%s: Files paragraphs %q, want %q", name, got, wantFiles)
		}
		if files["*"] != "Apache-2.0" {
			t.Errorf("%s: cove's licence %q, want Apache-2.0", name, files["*"])
		}
		var ids []string
		for f, lic := range files {
			for _, l := range strings.Split(lic, " and ") {
				if _, ok := licences[l]; !ok {
					t.Errorf("%s: Files: %s: no License paragraph %q", name, f, l)
				}
				id, _, _ := strings.Cut(l, "~")
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if got, want := rpmQuery(t, rpm, "--qf", "%{LICENSE}"), strings.Join(slices.Compact(ids), " AND "); got != want {
			t.Errorf("rpm License %q, want the licences of the %s's copyright file %q", got, name, want)
		}
	}
	if !strings.Contains(debText, "/usr/share/common-licenses/Apache-2.0") || strings.Contains(debText, "TERMS AND CONDITIONS FOR USE") {
		t.Error("the deb's copyright file does not refer to /usr/share/common-licenses/Apache-2.0")
	}
	if !strings.Contains(rpmText, "TERMS AND CONDITIONS FOR USE") {
		t.Error("the rpm's copyright file does not hold the text of Apache-2.0")
	}
}

// paragraphs parses a copyright file: each Files paragraph's License, and
// the stand-alone License paragraphs by name.
func paragraphs(t *testing.T, name, text string) (files, licences map[string]string) {
	t.Helper()
	files, licences = map[string]string{}, map[string]string{}
	paras := strings.Split(strings.TrimSpace(text), "\n\n")
	if !strings.HasPrefix(paras[0], "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("%s: header %q", name, paras[0])
	}
	for _, p := range paras[1:] {
		fields := map[string]string{}
		for _, line := range strings.Split(p, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		if f, ok := fields["Files"]; ok {
			files[f] = fields["License"]
		} else if _, dup := licences[fields["License"]]; dup || !strings.Contains(p, "\n ") {
			t.Errorf("%s: License paragraph %q: a second one or no text", name, fields["License"])
		} else {
			licences[fields["License"]] = p
		}
	}
	return files, licences
}

// TestChangelog checks that both changelogs name the package's version
// and its maintainer, who is also the rpm's Packager.
func TestChangelog(t *testing.T) {
	deb, rpm := pkg(t, "deb", v1), pkg(t, "rpm", v1)
	gz := fileIn(t, exec.Command("dpkg-deb", "--fsys-tarfile", deb), "", "./usr/share/doc/cove/changelog.gz")
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if !strings.HasPrefix(lines[0], "cove ("+v1+") unstable; urgency=medium") || !strings.HasPrefix(lines[len(lines)-1], " -- "+maintainer+"  ") {
		t.Errorf("the deb's changelog:\n%s", data)
	}
	if got := rpmQuery(t, rpm, "--changelog"); !strings.Contains(got, " "+maintainer+" - "+v1+"-1\n- ") {
		t.Errorf("the rpm's changelog:\n%s", got)
	}
	if got := rpmQuery(t, rpm, "--qf", "%{PACKAGER}"); got != maintainer {
		t.Errorf("the rpm's Packager %q, want %q", got, maintainer)
	}
}

// fileIn returns the file at path in the tar archive cmd writes (reading
// stdin from the file in, if any).
func fileIn(t *testing.T, cmd *exec.Cmd, in, path string) string {
	t.Helper()
	if in != "" {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer io.Copy(io.Discard, out)
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: no %s", strings.Join(cmd.Args, " "), path)
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Name == path {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}
