package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A node process runs with GOMAXPROCS=1 and GOGC=50 unless the environment
// says otherwise (sidecar.go); /metrics shows what the runtime runs with.
func TestNodeProcessRuntimeSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       []string
		procs, gc string
	}{
		{"default", nil, "1", "50"},
		{"GOMAXPROCS=3 GOGC=200 in the environment", []string{"GOMAXPROCS=3", "GOGC=200"}, "3", "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			cmd := exec.Command(demoBin, seededArgs(freePorts(t, 1), 0)...)
			cmd.Env = append(envWithout("GOMAXPROCS", "GOGC"), tt.env...)
			p := startCommand(t, "node_0", cmd)
			waitServing(ctx, p)
			_, _, body := httpGet(ctx, t, p.url+"/metrics")
			for _, w := range []struct{ metric, want string }{
				{"go_sched_gomaxprocs_threads", tt.procs}, {"go_gc_gogc_percent", tt.gc},
			} {
				m := regexp.MustCompile(`(?m)^` + w.metric + ` (\d+)$`).FindSubmatch(body)
				if m == nil {
					t.Fatalf("/metrics has no %s:\n%s", w.metric, body)
				}
				if string(m[1]) != w.want {
					t.Errorf("%s = %s, want %s", w.metric, m[1], w.want)
				}
			}
		})
	}
}

// envWithout is the environment without the variables named.
func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
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

// What each build links (go list -deps): no build links net/http (the API
// is served by internal/minihttp; net/http brings crypto/tls, x509 and
// HTTP/2, 1.5 MB of every process's resident memory) or miekg/dns (the
// catalog's DNS is served on x/net's dnsmessage; miekg/dns links
// crypto/tls for DNS over TLS), and the sidecar build (-tags
// chitchat_omit_tls) links no crypto/tls either (0.7 to 1.5 MB more; only
// https:// health checks need it).
func TestBuildsLinkNoHTTPStack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tags      string
		forbidden []string
	}{
		{"default", "", []string{"net/http", "github.com/miekg/dns"}},
		{"sidecar", "chitchat_omit_tls", []string{"net/http", "github.com/miekg/dns", "crypto/tls", "crypto/x509"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(testContext(t), "go", "list", "-deps", "-tags", tt.tags, ".")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps -tags %q: %v", tt.tags, err)
			}
			deps := strings.Fields(string(out))
			for _, f := range tt.forbidden {
				if slices.Contains(deps, f) {
					t.Errorf("the %s build links %s", tt.name, f)
				}
			}
		})
	}
}
