package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A node process runs with GOMAXPROCS=1 unless the environment says
// otherwise (sidecar.go); /metrics shows what the runtime runs with.
func TestNodeProcessGOMAXPROCS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"default", nil, "1"},
		{"GOMAXPROCS=3 in the environment", []string{"GOMAXPROCS=3"}, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			cmd := exec.Command(demoBin, seededArgs(freePorts(t, 1), 0)...)
			cmd.Env = append(envWithout("GOMAXPROCS"), tt.env...)
			p := startCommand(t, "node_0", cmd)
			waitServing(ctx, p)
			_, _, body := httpGet(ctx, t, p.url+"/metrics")
			m := regexp.MustCompile(`(?m)^go_sched_gomaxprocs_threads (\d+)$`).FindSubmatch(body)
			if m == nil {
				t.Fatalf("/metrics has no go_sched_gomaxprocs_threads:\n%s", body)
			}
			if string(m[1]) != tt.want {
				t.Errorf("GOMAXPROCS = %s, want %s", m[1], tt.want)
			}
		})
	}
}

func envWithout(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// Package initialization stays light (GODEBUG=inittrace=1): none of this
// module's packages allocates more than 64 KiB at init (chitchat allocated
// 2.9 MB of zstd encoders), and the Prometheus client (with procfs and
// protobuf: 1.9 MB of mapped image, 2 ms of start-up) is not linked.
func TestPackageInitIsLight(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, demoBin, "--help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chitchat-demo --help: %v\n%s", err, stderr.String())
	}
	// init github.com/x/y @0.5 ms, 0.1 ms clock, 1234 bytes, 5 allocs
	line := regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, \d+ allocs$`)
	seen := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		seen++
		pkg := m[1]
		bytes, _ := strconv.Atoi(m[2])
		if strings.HasPrefix(pkg, "github.com/gossipkit/chitchat-go/") && bytes > 64<<10 {
			t.Errorf("init of %s allocates %d bytes, want at most 64 KiB", pkg, bytes)
		}
		if strings.HasPrefix(pkg, "github.com/prometheus/") {
			t.Errorf("%s is linked into chitchat-demo (and initialized at start-up)", pkg)
		}
	}
	if seen == 0 {
		t.Fatalf("no inittrace lines in:\n%s", stderr.String())
	}
}
