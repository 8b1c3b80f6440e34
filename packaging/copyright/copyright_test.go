package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	mit = `Copyright (c) 2020 A. Author

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software ...`
	bsd3 = `Copyright 2009 The Go Authors.

Redistribution and use in source and binary forms, with or without
modification, are permitted ...
   * Neither the name of Google LLC nor the names of its
contributors may be used to endorse or promote products derived from
this software without specific prior written permission.`
	bsd2 = `Redistribution and use in source and binary forms, with or without
modification, are permitted ...`
	gpl = `GNU GENERAL PUBLIC LICENSE
Version 3, 29 June 2007`
)

// tempModule writes files into a module directory.
func tempModule(t *testing.T, files map[string]string) module {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return module{path: "example.com/m", version: "v1.0.0", dir: dir}
}

func TestScan(t *testing.T) {
	for _, c := range []struct {
		name       string
		files      map[string]string
		ids        []string
		copyrights []string
	}{
		{"one", map[string]string{"LICENSE": mit}, []string{"MIT"}, []string{"Copyright (c) 2020 A. Author"}},
		{"several separated", map[string]string{"LICENSE": bsd3 + "\n\n-----\n\n" + mit + "\n\n-----\n" + bsd2},
			[]string{"BSD-3-Clause", "MIT", "BSD-2-Clause"}, []string{"Copyright 2009 The Go Authors.", "Copyright (c) 2020 A. Author"}},
		{"several titled", map[string]string{"LICENSE": "Covered by two licences.\n\n#### MIT License ####\n\n" + mit + "\n\n### BSD ###\n\n" + bsd2},
			[]string{"MIT", "BSD-2-Clause"}, []string{"Copyright (c) 2020 A. Author"}},
		{"combined and separate", map[string]string{"COPYING.md": bsd3 + "\n" + mit, "LICENSE.BSD": bsd3, "LICENSE.MIT": mit},
			[]string{"BSD-3-Clause", "MIT"}, []string{"Copyright 2009 The Go Authors.", "Copyright (c) 2020 A. Author"}},
		{"docs and notice", map[string]string{"LICENSE": mit, "LICENSE.docs": gpl, "NOTICE": "Copyright 2021 B"},
			[]string{"MIT"}, []string{"Copyright (c) 2020 A. Author", "Copyright 2021 B"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lics, copyrights, _, err := scan(tempModule(t, c.files))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range lics {
				ids = append(ids, l.ids...)
			}
			if !reflect.DeepEqual(ids, c.ids) || !reflect.DeepEqual(copyrights, c.copyrights) {
				t.Errorf("licences %q, copyrights %q; want %q, %q", ids, copyrights, c.ids, c.copyrights)
			}
		})
	}
}

// TestScanFails: a licence that is not known, or several in one text,
// stop the package build.
func TestScanFails(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"unknown licence": {"LICENSE": gpl},
		"unknown part":    {"LICENSE": mit + "\n\n---\n\n" + gpl},
		"titled, not one": {"LICENSE": "Two licences.\n\n### MIT ###\n\n" + mit + "\n\n### BSD ###\n\n" + bsd3 + "\n" + bsd2},
		"no licence file": {"README": mit},
		"several in one":  {"LICENSE": bsd3 + "\n" + mit},
	} {
		if _, _, _, err := scan(tempModule(t, files)); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "example.com/m v1.0.0") {
			t.Errorf("%s: %v does not name the module", name, err)
		}
	}
}
