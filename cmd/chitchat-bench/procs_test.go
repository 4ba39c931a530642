package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// children returns the PIDs of this process's children named
// chitchat-demo, zombies included (a child not reaped yet).
func children(t *testing.T) []int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) || string(b[open+1:end]) != "chitchat-demo" {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
		out = append(out, pid)
	}
	return out
}

// demoBin builds cmd/chitchat-demo once for the tests of this package.
var demoBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "chitchat-bench-test-")
	if err != nil {
		return "", err
	}
	testDirs = append(testDirs, dir)
	bin := filepath.Join(dir, "chitchat-demo")
	return bin, buildDemo(context.Background(), bin, demoBuilds["sidecar"])
})

var testDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range testDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func procsArgs(t *testing.T, args ...string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts chitchat-demo processes")
	}
	bin, err := demoBin()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"-demo-bin", bin}, args...)
}

// TestProcs runs -procs with 3 demo processes at a 50 ms interval (about
// 3 s, plus the demo's build when the build cache is cold): every field is
// measured and no process is left behind. Skipped with -short.
func TestProcs(t *testing.T) {
	out := runJSON(t, procsArgs(t, "-procs", "3", "-interval", "50ms", "-procs-steady", "500ms", "-timeout", "20s")...)
	res := out[0]
	if errs, _ := res["errors"].([]any); len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	for _, f := range []string{"converge_s", "rss_kb_median", "startup_ms_median", "detect_median_s", "detect_last_s"} {
		if v, ok := res[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, res[f])
		}
	}
	// 3 idle processes for half a second may not use one clock tick (10 ms).
	if v, ok := res["cpu_s_per_node_s"].(float64); !ok || v < 0 {
		t.Errorf("cpu_s_per_node_s = %v, want a number >= 0", res["cpu_s_per_node_s"])
	}
	if res["n"] != 3.0 || res["interval_ms"] != 50.0 {
		t.Errorf("n, interval_ms = %v, %v", res["n"], res["interval_ms"])
	}
	if left := children(t); len(left) != 0 {
		t.Errorf("demo processes left behind: %v", left)
	}
}

// TestProcsFailureCleansUp makes -procs fail in two ways: the run reports
// one error saying why, and leaves no process behind (running ones are
// killed and every one is reaped).
func TestProcsFailureCleansUp(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		// The process exits at once: its own message is reported.
		{"bad demo flag", []string{"-procs", "3", "--", "--no_such_flag"}, "no_such_flag"},
		// The first process is still starting at the time limit: it is killed.
		{"time limit", []string{"-procs", "3", "-timeout", "1ms"}, "time limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := runJSON(t, procsArgs(t, c.args...)...)
			errs, _ := out[0]["errors"].([]any)
			if len(errs) != 1 || !strings.Contains(errs[0].(string), c.want) {
				t.Errorf("errors = %v, want one saying %q", errs, c.want)
			}
			if left := children(t); len(left) != 0 {
				t.Errorf("demo processes left behind: %v", left)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		name    string
		line    string
		want    uint64
		wantErr bool
	}{
		{"plain", "1234 (chitchat-demo) S 1 1234 1234 0 -1 4194560 2000 0 0 0 70 30 0 0 20 0 8 0 100 0 0", 100, false},
		{"name with spaces and parens", "1 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0", 11, false},
		{"no name", "1 a S 1", 0, true},
		{"too short", "1 (x) S 1 2 3", 0, true},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0 0", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(c.line))
			if (err != nil) != c.wantErr || got != c.want {
				t.Errorf("parseStatCPU = %d, %v; want %d, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, c := range []struct {
		name    string
		status  string
		want    uint64
		wantErr bool
	}{
		{"present", "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t   16788 kB\nThreads:\t5\n", 16788, false},
		{"missing (a zombie)", "Name:\tx\nState:\tZ (zombie)\n", 0, true},
		{"other unit", "VmRSS:\t 16 MB\n", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(c.status))
			if (err != nil) != c.wantErr || got != c.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestClockTicks(t *testing.T) {
	auxv := func(pairs ...uint64) []byte {
		var b []byte
		for _, x := range pairs {
			b = binary.NativeEndian.AppendUint64(b, x)
		}
		return b
	}
	got := []uint64{
		auxvClockTicks(auxv(6, 4096, 17, 250, 0, 0)), // AT_PAGESZ, AT_CLKTCK
		auxvClockTicks(auxv(6, 4096, 0, 0, 17, 250)), // after AT_NULL: ignored
		auxvClockTicks(nil),
		clockTicks(), // this machine: USER_HZ
	}
	if diff := cmp.Diff([]uint64{250, 100, 100, 100}, got); diff != "" {
		t.Errorf("clock ticks (-want +got):\n%s", diff)
	}
}
