package doccheck

import (
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Code in documentation rots unless something compiles and runs it. These
// tests hold every Go code block of the repository's doc comments and of
// README.md to being the body of an Example function, with an output
// comment, so that `go test` compiles it and checks what it prints:
//
//   - a doc comment's Go block must be the body of an Example of the same
//     package (in a _test.go file of its directory), or, for code that
//     needs a *testing.T (the test helpers' documentation), of a test named
//     TestDoc…;
//   - a ```go block of README.md must follow a marker naming its Example,
//     <!-- ExampleName -->, and be that Example's body.
//
// Blocks are compared line by line, ignoring indentation and blank lines;
// the Example's output comment may be left out of the block.

// root is the repository root, from this package's directory.
const root = "../.."

// example is an Example function's body, normalized, and where it is.
type example struct {
	name, pos string
	body      string // without the output comment
	full      string // with it
	runs      bool   // it has an output comment, so go test runs it
}

func TestDocCommentCodeIsAnExample(t *testing.T) {
	checked := 0
	for _, dir := range goDirs(t) {
		files, tests := parseDir(t, dir)
		examples := examplesOf(tests)
		for _, f := range files {
			for _, cg := range docComments(f.ast) {
				for _, code := range codeBlocks(cg) {
					if !isGo(code) {
						continue
					}
					checked++
					pos := blockPosition(f, cg, code)
					ex, ok := findExample(examples, code)
					switch {
					case !ok:
						t.Errorf("%s:%d: this Go code block of a doc comment is not the body of an Example of its package:\n%s\n"+
							"Make it the body of an Example function with an // Output: comment (in a _test.go file of %s), so that the tests compile and run it.",
							rel(pos.Filename), pos.Line, indent(code), rel(dir))
					case !ex.runs:
						t.Errorf("%s:%d: the code block is %s (%s), which has no output comment: go test compiles it but never runs it",
							rel(pos.Filename), pos.Line, ex.name, ex.pos)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go code block found in any doc comment: the test looks in the wrong place")
	}
}

func TestREADMECodeIsAnExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var all []example
	for _, dir := range goDirs(t) {
		_, tests := parseDir(t, dir)
		all = append(all, examplesOf(tests)...)
	}
	blocks := regexp.MustCompile("(?s)(?:<!-- (Example\\w*) -->\n)?```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block: the test looks in the wrong place")
	}
	for _, b := range blocks {
		name, code := b[1], b[2]
		if name == "" {
			t.Errorf("README.md: a ```go block has no <!-- ExampleName --> marker before it:\n%s", indent(code))
			continue
		}
		i := slices.IndexFunc(all, func(e example) bool { return e.name == name })
		if i < 0 {
			t.Errorf("README.md: <!-- %s -->: no Example function of that name", name)
			continue
		}
		ex := all[i]
		if n := normalize(code); n != ex.body && n != ex.full {
			t.Errorf("README.md: the block after <!-- %s --> differs from %s (%s):\nREADME:\n%s\nExample:\n%s", name, name, ex.pos, indent(n), indent(ex.full))
		}
		if !ex.runs {
			t.Errorf("README.md: %s (%s) has no output comment: go test never runs it", name, ex.pos)
		}
	}
}

// isGo reports whether a code block is Go: it parses as statements or
// declarations, or it scans as Go tokens and looks like Go (a := or a call
// of a qualified name), which catches broken snippets. Diagrams, formulas
// and grammars use characters Go does not allow, or do not look like Go.
func isGo(code string) bool {
	if parses("package p; func _() {\n"+code+"\n}") || parses("package p\n"+code) {
		return true
	}
	var s scanner.Scanner
	fset := token.NewFileSet()
	bad := false
	s.Init(fset.AddFile("", -1, len(code)), []byte(code), func(token.Position, string) { bad = true }, 0)
	for {
		if _, tok, _ := s.Scan(); tok == token.EOF {
			break
		}
	}
	return !bad && (strings.Contains(code, ":=") || qualifiedCall.MatchString(code))
}

var qualifiedCall = regexp.MustCompile(`\b[a-z]\w*\.[A-Z]\w*\(`)

func parses(src string) bool {
	_, err := parser.ParseFile(token.NewFileSet(), "", src, parser.SkipObjectResolution)
	return err == nil
}

func findExample(examples []example, code string) (example, bool) {
	n := normalize(code)
	for _, e := range examples {
		if n == e.body || n == e.full {
			return e, true
		}
	}
	return example{}, false
}

// normalize trims every line and drops blank ones.
func normalize(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

type parsedFile struct {
	fset *token.FileSet
	ast  *ast.File
	src  []byte
}

// goDirs returns every directory of the repository holding Go files.
func goDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !slices.Contains(dirs, filepath.Dir(path)) {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// parseDir parses the Go files of dir, non-test and test apart.
func parseDir(t *testing.T, dir string) (files, tests []parsedFile) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		pf := parsedFile{fset, f, src}
		if strings.HasSuffix(e.Name(), "_test.go") {
			tests = append(tests, pf)
		} else {
			files = append(files, pf)
		}
	}
	return files, tests
}

// examplesOf returns the Example functions of test files, and the tests
// named TestDoc…: documentation for code that needs a *testing.T (test
// helpers) is checked against them, since an Example cannot have one.
func examplesOf(tests []parsedFile) []example {
	var out []example
	for _, f := range tests {
		for _, d := range f.ast.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "TestDoc") {
				continue
			}
			body := normalize(string(f.src[f.fset.Position(fn.Body.Lbrace).Offset+1 : f.fset.Position(fn.Body.Rbrace).Offset]))
			out = append(out, example{name: fn.Name.Name, pos: rel(f.fset.Position(fn.Pos()).String()), body: body, full: body, runs: true})
		}
		for _, ex := range doc.Examples(f.ast) {
			fn := exampleFunc(f.ast, ex.Name)
			if fn == nil {
				continue
			}
			body := string(f.src[f.fset.Position(fn.Body.Lbrace).Offset+1 : f.fset.Position(fn.Body.Rbrace).Offset])
			e := example{
				name: "Example" + ex.Name,
				pos:  rel(f.fset.Position(fn.Pos()).String()),
				full: normalize(body),
				runs: ex.Output != "" || ex.EmptyOutput,
			}
			// The body without its output comment: everything before the
			// comment group that holds "Output:".
			e.body = e.full
			for _, cg := range f.ast.Comments {
				if cg.Pos() > fn.Body.Lbrace && cg.End() < fn.Body.Rbrace && strings.Contains(cg.Text(), "Output:") {
					e.body = normalize(string(f.src[f.fset.Position(fn.Body.Lbrace).Offset+1 : f.fset.Position(cg.Pos()).Offset]))
				}
			}
			out = append(out, e)
		}
	}
	return out
}

func exampleFunc(f *ast.File, name string) *ast.FuncDecl {
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "Example"+name {
			return fn
		}
	}
	return nil
}

// docComments returns the doc comments of a file: the package's and every
// declaration's.
func docComments(f *ast.File) []*ast.CommentGroup {
	var out []*ast.CommentGroup
	add := func(cg *ast.CommentGroup) {
		if cg != nil {
			out = append(out, cg)
		}
	}
	add(f.Doc)
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			add(n.Doc)
		case *ast.GenDecl:
			add(n.Doc)
		case *ast.TypeSpec:
			add(n.Doc)
		case *ast.ValueSpec:
			add(n.Doc)
		case *ast.Field:
			add(n.Doc)
		}
		return true
	})
	return out
}

// blockPosition returns where code starts in the comment group: the first
// line at or after the group's start that holds the code's first line.
func blockPosition(f parsedFile, cg *ast.CommentGroup, code string) token.Position {
	pos := f.fset.Position(cg.Pos())
	first := strings.TrimSpace(strings.SplitN(code, "\n", 2)[0])
	for i, line := range strings.Split(string(f.src[pos.Offset:f.fset.Position(cg.End()).Offset]), "\n") {
		if strings.Contains(line, first) {
			pos.Line += i
			return pos
		}
	}
	return pos
}

// codeBlocks returns the code blocks of a doc comment.
func codeBlocks(cg *ast.CommentGroup) []string {
	var p comment.Parser
	var out []string
	for _, b := range p.Parse(cg.Text()).Content {
		if c, ok := b.(*comment.Code); ok {
			out = append(out, c.Text)
		}
	}
	return out
}

func rel(path string) string {
	abs, _ := filepath.Abs(root)
	if r, err := filepath.Rel(abs, func() string { p, _ := filepath.Abs(path); return p }()); err == nil {
		return r
	}
	return path
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}
