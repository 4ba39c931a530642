package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testHTTPOptions are the default --http_* options.
func testHTTPOptions() httpOptions {
	o, err := parseNodeFlags(nil)
	if err != nil {
		panic(err)
	}
	return o.http
}

func TestHTTPFlagsParse(t *testing.T) {
	o, err := parseNodeFlags([]string{"--http_allowed_hosts", "Node1.Example.com, 10.0.0.5", "--http_allowed_hosts", "[fd00::1],*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"node1.example.com", "10.0.0.5", "[fd00::1]", "*"}
	if diff := cmp.Diff(want, o.http.allowedHosts); diff != "" {
		t.Errorf("allowed hosts mismatch (-want +got):\n%s", diff)
	}
}

func TestHTTPFlagDefaults(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := httpOptions{maxConns: 256, maxEventStreams: 64}
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
		{"zero event streams", []string{"--http_max_event_streams", "0"}, []string{`--http_max_event_streams "0": must be a whole number`}},
		{"as many event streams as connections", []string{"--http_max_event_streams", "10", "--http_max_connections", "10"},
			[]string{"--http_max_event_streams 10 must be below --http_max_connections 10"}},
		{"allowed host with a port", []string{"--http_allowed_hosts", "node1.example:10000"}, []string{`"node1.example:10000" is not a host name or an IP address`}},
		{"allowed host with a scheme", []string{"--http_allowed_hosts", "a.example,http://b.example"}, []string{`"http://b.example" is not a host name`}},
		{"allowed host empty", []string{"--http_allowed_hosts", ""}, []string{`"" is not a host name`}},
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
