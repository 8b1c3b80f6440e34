package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines is the longest a function may be without saying why.
const maxLines = 80

// longReason in a function's doc comment states why it may be longer.
const longReason = "Long because"

// TestFunctionLength fails for every function (tests included) longer
// than maxLines whose doc comment does not say "Long because …".
func TestFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(root(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return skipDir(d, err)
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok {
				checkLength(t, fset, fd)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// skipDir ends the walk on an error and skips hidden directories.
func skipDir(d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	return filepath.SkipDir
}

// checkLength reports fd if it is too long without a stated reason.
func checkLength(t *testing.T, fset *token.FileSet, fd *ast.FuncDecl) {
	start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
	n := end.Line - start.Line + 1
	if n <= maxLines || fd.Doc != nil && strings.Contains(fd.Doc.Text(), longReason) {
		return
	}
	t.Errorf("%s:%d: %s is %d lines (at most %d, or say %q in its doc comment)", start.Filename, start.Line, fd.Name.Name, n, maxLines, longReason+" …")
}
