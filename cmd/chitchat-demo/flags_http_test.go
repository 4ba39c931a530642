package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHTTPFlagDefaults(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := httpOptions{maxConns: 256}
	if diff := cmp.Diff(want, o.http, cmp.AllowUnexported(httpOptions{})); diff != "" {
		t.Errorf("HTTP defaults mismatch (-want +got):\n%s", diff)
	}
}

// Problems with the HTTP flags, each naming its flag and what to do.
func TestHTTPFlagProblems(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // one problem each
	}{
		{"zero connections", []string{"--http_max_connections", "0"}, []string{`--http_max_connections "0": must be a whole number between 1 and 1000000`}},
		{"connections not a number", []string{"--http_max_connections", "many"}, []string{`--http_max_connections "many"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNodeFlags(tt.args)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if msgs := strings.Split(err.Error(), "\n"); len(msgs) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(msgs), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem mentions %q in:\n%s", w, err)
				}
			}
		})
	}
}
