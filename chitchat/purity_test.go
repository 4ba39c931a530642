package chitchat

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The core is deterministic: no clock, no goroutines, no
// sockets, no global randomness. This test parses every non-test file of
// chitchat/ and failuredetector/, except the driver (files starting with
// "server" or "dns"), and fails on anything that would break that.

// bannedTime are the time functions that read the clock or start timers.
var bannedTime = []string{"Now", "Since", "Until", "After", "AfterFunc", "Sleep", "Tick", "NewTimer", "NewTicker"}

// allowedRandV2 are the math/rand/v2 identifiers that do not touch the
// package's global generator: types and constructors of explicit sources.
var allowedRandV2 = []string{"Rand", "Source", "PCG", "ChaCha8", "Zipf", "New", "NewPCG", "NewChaCha8", "NewZipf"}

// bannedImports cannot appear at all.
var bannedImports = []string{"os", "math/rand", "os/exec", "syscall"}

// netAllowance lists sanctioned uses of package net in core files, by file:
// none. Seed parsing and the default resolver live in the driver.
var netAllowance = map[string][]string{}

// importName returns the name a file uses for an import.
func importName(spec *ast.ImportSpec) (name, importPath string) {
	importPath, _ = strconv.Unquote(spec.Path.Value)
	if spec.Name != nil {
		return spec.Name.Name, importPath
	}
	base := path.Base(importPath)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		base = path.Base(path.Dir(importPath)) // math/rand/v2 is "rand"
	}
	return base, importPath
}

// impurities returns the violations of one parsed file.
func impurities(fset *token.FileSet, file *ast.File, base string) []string {
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		pos := fset.Position(n.Pos())
		out = append(out, fmt.Sprintf("%s:%d: %s", base, pos.Line, fmt.Sprintf(format, args...)))
	}
	names := map[string]string{} // local name -> import path
	for _, spec := range file.Imports {
		name, p := importName(spec)
		names[name] = p
		if slices.Contains(bannedImports, p) {
			report(spec, "imports %q", p)
		}
		if p == "net" && netAllowance[base] == nil {
			report(spec, `imports "net" (use net/netip; sockets belong to the Server)`)
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n, "go statement (the core starts no goroutines)")
		case *ast.SelectorExpr:
			pkg, ok := n.X.(*ast.Ident)
			if !ok || pkg.Obj != nil { // a local variable, not a package
				return true
			}
			switch names[pkg.Name] {
			case "time":
				if slices.Contains(bannedTime, n.Sel.Name) {
					report(n, "time.%s (the caller passes now in)", n.Sel.Name)
				}
			case "math/rand/v2":
				if !slices.Contains(allowedRandV2, n.Sel.Name) {
					report(n, "rand.%s uses the global generator (use the injected *rand.Rand)", n.Sel.Name)
				}
			case "net":
				if !slices.Contains(netAllowance[base], n.Sel.Name) {
					report(n, "net.%s", n.Sel.Name)
				}
			}
		}
		return true
	})
	return out
}

func TestPurity(t *testing.T) {
	checked := 0
	for _, dir := range []string{".", filepath.Join("..", "failuredetector")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			base := filepath.Base(f)
			if strings.HasSuffix(base, "_test.go") || strings.HasPrefix(base, "server") || strings.HasPrefix(base, "dns") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, src, 0)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			for _, v := range impurities(fset, file, base) {
				t.Errorf("%s: %s", dir, v)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("checked only %d files: wrong directory?", checked)
	}
	t.Logf("%d core files are pure", checked)
}

// The checker itself, on snippets.
func TestPurityChecker(t *testing.T) {
	tests := []struct {
		name string
		file string // base name, for the net allowance
		src  string
		want []string
	}{
		{name: "clean", src: `package p
import ("time"; "math/rand/v2"; "net/netip")
func f(now time.Time, r *rand.Rand) netip.Addr { _ = rand.New(rand.NewPCG(1, 2)); _ = r.IntN(3); _ = now.Add(time.Second); return netip.Addr{} }`},
		{name: "clock", src: `package p
import "time"
func f() { _ = time.Now(); time.Sleep(1); _ = time.After; _ = time.NewTicker(1) }`,
			want: []string{"x.go:3: time.Now (the caller passes now in)", "x.go:3: time.Sleep (the caller passes now in)",
				"x.go:3: time.After (the caller passes now in)", "x.go:3: time.NewTicker (the caller passes now in)"}},
		{name: "aliased time", src: `package p
import clock "time"
func f() { _ = clock.Since(clock.Time{}) }`,
			want: []string{"x.go:3: time.Since (the caller passes now in)"}},
		{name: "local variable named time", src: `package p
type c struct{ Now func() }
func f() { time := c{}; time.Now() }`},
		{name: "goroutine", src: `package p
func f() { go f() }`,
			want: []string{"x.go:2: go statement (the core starts no goroutines)"}},
		{name: "global rand", src: `package p
import "math/rand/v2"
func f() int { return rand.IntN(3) }`,
			want: []string{"x.go:3: rand.IntN uses the global generator (use the injected *rand.Rand)"}},
		{name: "rand v1 and os", src: `package p
import ("math/rand"; "os")
var _, _ = rand.Intn, os.Exit`,
			want: []string{`x.go:2: imports "math/rand"`, `x.go:2: imports "os"`}},
		{name: "net", src: `package p
import "net"
var _ = net.Dial`,
			want: []string{`x.go:2: imports "net" (use net/netip; sockets belong to the Server)`, "x.go:3: net.Dial"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.file
			if base == "" {
				base = "x.go"
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, base, tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, impurities(fset, file, base), cmpOpts); diff != "" {
				t.Errorf("impurities mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
