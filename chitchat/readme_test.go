package chitchat_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README shows ExampleServer; this keeps the two identical, so the
// README's example is compiled and run by the tests.
func TestREADMEShowsExampleServer(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- ExampleServer -->\n```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```go block after <!-- ExampleServer -->")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`(?s)func ExampleServer\(\) \{\n(.*?)\n\}`).FindSubmatch(src)
	if body == nil {
		t.Fatal("example_test.go has no ExampleServer")
	}
	norm := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	if got, want := norm(string(m[1])), norm(string(body[1])); got != want {
		t.Errorf("README example differs from ExampleServer:\nREADME:\n%s\n\nexample_test.go:\n%s", got, want)
	}
}
