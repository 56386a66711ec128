package samtemplate

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

const metricsImport = "github.com/certferry/certferry/internal/metrics"

// emitted is what certferry's production code publishes through
// internal/metrics, read from the source itself (not a copied list): the
// metric names (keys of metrics.Values literals and of index assignments on
// a metrics.Values variable) and the dimension keys (keys of the map
// literal passed to Emit), each with the file that names it.
type emitted struct {
	metrics map[string]string // name -> file
	dims    map[string]string
}

// emittedMetrics parses every non-test Go file under root (the module).
// A key that is neither a string literal nor a string constant of the
// module is returned in unreadable: the dashboard check would otherwise
// miss it.
func emittedMetrics(root string) (out emitted, unreadable []string, err error) {
	fset := token.NewFileSet()
	var files []*ast.File
	var names []string
	consts := map[string]string{} // "pkgname.Const" and "Const@dir" -> value
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		files, names = append(files, f), append(names, path)
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							consts[f.Name.Name+"."+id.Name] = v
							consts[id.Name+"@"+filepath.Dir(path)] = v
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return out, nil, err
	}
	out = emitted{metrics: map[string]string{}, dims: map[string]string{}}
	for i, f := range files {
		path := names[i]
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == metricsImport {
				local = "metrics"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		// key resolves a string literal or a string constant.
		key := func(e ast.Expr) string {
			switch k := e.(type) {
			case *ast.BasicLit:
				if k.Kind == token.STRING {
					v, _ := strconv.Unquote(k.Value)
					return v
				}
			case *ast.Ident:
				if v, ok := consts[k.Name+"@"+filepath.Dir(path)]; ok {
					return v
				}
			case *ast.SelectorExpr:
				if x, ok := k.X.(*ast.Ident); ok {
					if v, ok := consts[x.Name+"."+k.Sel.Name]; ok {
						return v
					}
				}
			}
			unreadable = append(unreadable, fmt.Sprintf("%s: metric or dimension key %T is not a string literal or constant this test can read", fset.Position(e.Pos()), e))
			return ""
		}
		isValues := func(e ast.Expr) bool {
			s, ok := e.(*ast.SelectorExpr)
			if !ok {
				return false
			}
			x, ok := s.X.(*ast.Ident)
			return ok && x.Name == local && s.Sel.Name == "Values"
		}
		valueVars := map[string]bool{} // identifiers holding a metrics.Values
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for j, rhs := range n.Rhs {
					if cl, ok := rhs.(*ast.CompositeLit); ok && isValues(cl.Type) && j < len(n.Lhs) {
						if id, ok := n.Lhs[j].(*ast.Ident); ok {
							valueVars[id.Name] = true
						}
					}
				}
			case *ast.ValueSpec:
				if isValues(n.Type) {
					for _, id := range n.Names {
						valueVars[id.Name] = true
					}
				}
				for j, v := range n.Values {
					if cl, ok := v.(*ast.CompositeLit); ok && isValues(cl.Type) && j < len(n.Names) {
						valueVars[n.Names[j].Name] = true
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if isValues(n.Type) {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k := key(kv.Key); k != "" {
								out.metrics[k] = path
							}
						}
					}
				}
			case *ast.AssignStmt:
				for _, lhs := range n.Lhs {
					ix, ok := lhs.(*ast.IndexExpr)
					if !ok {
						continue
					}
					if id, ok := ix.X.(*ast.Ident); ok && valueVars[id.Name] {
						if k := key(ix.Index); k != "" {
							out.metrics[k] = path
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Emit" || len(n.Args) != 2 {
					return true
				}
				if cl, ok := n.Args[0].(*ast.CompositeLit); ok {
					for _, el := range cl.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k := key(kv.Key); k != "" {
								out.dims[k] = path
							}
						}
					}
				}
			}
			return true
		})
	}
	return out, unreadable, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The reader itself: it finds names in every form the code uses, and fails
// on a key it cannot read.
func TestEmittedMetricsReader(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import m "github.com/certferry/certferry/internal/metrics"

const Lit = "FromConst"

func f(e *m.Emitter) {
	v := m.Values{"A": 1}
	v["B"], v["C"] = 2, 3
	v[Lit] = 4
	var w m.Values
	w = m.Values{}
	w["D"] = 1
	e.Emit(map[string]string{"Name": "n", "Kind": "k"}, v)
	e.Emit(nil, m.Values{"E": 1})
	other := map[string]float64{}
	other["NotAMetric"] = 1
}
`
	if err := writeFile(filepath.Join(dir, "x.go"), src); err != nil {
		t.Fatal(err)
	}
	got, unreadable, err := emittedMetrics(dir)
	if err != nil || len(unreadable) > 0 {
		t.Fatal(err, unreadable)
	}
	if fmt.Sprint(sortedKeys(got.metrics)) != "[A B C D E FromConst]" {
		t.Errorf("metrics %v", sortedKeys(got.metrics))
	}
	if fmt.Sprint(sortedKeys(got.dims)) != "[Kind Name]" {
		t.Errorf("dims %v", sortedKeys(got.dims))
	}

	bad := strings.Replace(src, `v[Lit] = 4`, `v[name()] = 4`, 1) + "\nfunc name() string { return \"x\" }\n"
	if err := writeFile(filepath.Join(dir, "x.go"), bad); err != nil {
		t.Fatal(err)
	}
	if _, unreadable, err := emittedMetrics(dir); err != nil || len(unreadable) != 1 || !strings.Contains(unreadable[0], "x.go:10:") {
		t.Errorf("a computed metric name: unreadable %q, err %v", unreadable, err)
	}
}
