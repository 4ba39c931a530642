package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" for success
	}{
		{name: "defaults", args: nil},
		{name: "fast with loss", args: []string{"-n", "10", "-profile", "fast", "-loss", "0.2", "-seed", "7"}},
		{name: "one node", args: []string{"-n", "1"}, wantErr: "-n 1: need at least 2 nodes"},
		{name: "unknown profile", args: []string{"-profile", "wan"}, wantErr: `-profile "wan": want lan or fast`},
		{name: "loss of 1", args: []string{"-loss", "1"}, wantErr: "need 0 <= -loss < 1"},
		{name: "negative warmup", args: []string{"-warmup", "-1s"}, wantErr: "-warmup not negative"},
		{name: "ports overflow", args: []string{"-port", "65530", "-n", "10"}, wantErr: "ports must stay below 65536"},
		{name: "stray argument", args: []string{"50"}, wantErr: "every setting is a flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(tt.args, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q) = %v, want no error", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestPushPullPeriod(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{{2, 10 * time.Second}, {32, 10 * time.Second}, {33, 20 * time.Second}, {64, 20 * time.Second},
		{65, 30 * time.Second}, {100, 30 * time.Second}, {200, 40 * time.Second}}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			if got := pushPullPeriod(10*time.Second, tt.n); got != tt.want {
				t.Errorf("pushPullPeriod(10s, %d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// The JSON line must keep cmd/chitchat-bench's field names, so that
// cmd/benchplot reads both harnesses: every field of chitchat-bench's UDP
// result, except its own interval_s, and no other.
func TestFieldsMatchChitchatBench(t *testing.T) {
	theirs := jsonTags(t, "../../cmd/chitchat-bench/udp.go", "result")
	theirs = slices.DeleteFunc(theirs, func(s string) bool { return s == "interval_s" })
	var ours []string
	rt := reflect.TypeFor[result]()
	for i := range rt.NumField() {
		ours = append(ours, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	if diff := cmp.Diff(theirs, ours); diff != "" {
		t.Errorf("JSON fields differ from cmd/chitchat-bench's (-chitchat-bench +memberlist-bench):\n%s", diff)
	}
}

// jsonTags returns the json tag names of the fields of struct typeName in
// file, in order.
func jsonTags(t *testing.T, file, typeName string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != typeName {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			tag, _ := strconv.Unquote(fld.Tag.Value)
			tags = append(tags, strings.Split(reflect.StructTag(tag).Get("json"), ",")[0])
		}
		return false
	})
	if len(tags) == 0 {
		t.Fatalf("%s: no struct %s", file, typeName)
	}
	return tags
}

// A 3-node run on loopback (free ports) with a short window reports every
// figure and no error. It takes a few seconds: the fast profile's failure
// detection.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real memberlist nodes for a few seconds")
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "3", "-profile", "fast", "-steady", "500ms", "-timeout", "30s"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	if errs := got["errors"].([]any); len(errs) != 0 {
		t.Errorf("errors = %v, want none", errs)
	}
	for _, k := range []string{"convergence_s", "bytes_per_node_s_udp", "pkts_per_node_s", "cpu_s_per_node_s",
		"heap_bytes_per_node", "detect_median_s", "detect_last_s", "detect_first_s", "pushpull_bytes", "suspect_marks"} {
		if got[k] == nil {
			t.Errorf("%s is null", k)
		}
	}
	if got["system"] != "memberlist" || got["version"] != "v0.7.0" || got["n"] != 3.0 || got["detect_seen"] != 2.0 {
		t.Errorf("system, version, n, detect_seen = %v, %v, %v, %v; want memberlist, v0.7.0, 3, 2",
			got["system"], got["version"], got["n"], got["detect_seen"])
	}
}
