package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The memberlist harness's fields: the UDP mode must print every one of them.
var memberlistFields = []string{
	"system", "version", "profile", "n", "loss", "convergence_s",
	"bytes_per_node_s_udp", "bytes_per_node_s_tcp", "pkts_per_node_s",
	"cpu_s_per_node_s", "heap_bytes_per_node", "detect_median_s",
	"detect_last_s", "false_positives", "pkts_per_node_s_udp",
	"pkts_per_node_s_tcp", "tcp_conns_per_node_s", "udp_dropped_per_node_s",
	"false_positive_marks", "suspect_marks", "detect_first_s", "detect_seen",
	"false_positives_detect", "startup_s", "join_errors",
	"goroutines_per_node", "pushpull_bytes",
	"bytes_per_node_s_tcp_pushpull_est", "warmup_s", "steady_s", "timeout_s",
	"gomaxprocs", "go_version", "errors",
}

func runJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d; stderr:\n%s", args, code, stderr.String())
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestUDPSmoke runs three real servers on loopback UDP with a short
// interval and window: every field of the memberlist harness is there, and
// the run converged and detected the killed node.
func TestUDPSmoke(t *testing.T) {
	out := runJSON(t, "-n", "3", "-interval", "50ms", "-steady", "500ms", "-timeout", "20s", "-seed", "1",
		"-mtu", "1200", "-kv-writes", "20", "-kv-gap", "5ms")
	if len(out) != 1 {
		t.Fatalf("got %d JSON lines, want 1", len(out))
	}
	res := out[0]
	for _, f := range memberlistFields {
		if _, ok := res[f]; !ok {
			t.Errorf("field %q missing", f)
		}
	}
	if errs, _ := res["errors"].([]any); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
	if res["system"] != "chitchat-go" || res["n"] != 3.0 || res["bytes_per_node_s_tcp"] != 0.0 {
		t.Errorf("system, n, tcp = %v, %v, %v", res["system"], res["n"], res["bytes_per_node_s_tcp"])
	}
	for _, f := range []string{"convergence_s", "bytes_per_node_s_udp", "detect_last_s", "max_datagram_bytes"} {
		if v, ok := res[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, res[f])
		}
	}
	// A push can arrive in less than the clock's resolution: >= 0.
	for _, f := range []string{"kv_spread_p50_s", "kv_spread_p99_s", "leave_seen_s"} {
		if v, ok := res[f].(float64); !ok || v < 0 {
			t.Errorf("%s = %v, want a number >= 0", f, res[f])
		}
	}
	if p50, p99 := res["kv_spread_p50_s"].(float64), res["kv_spread_p99_s"].(float64); p50 > p99 {
		t.Errorf("kv spread p50 %v > p99 %v", p50, p99)
	}
	if m := res["max_datagram_bytes"].(float64); m > 1200 {
		t.Errorf("max_datagram_bytes = %v with -mtu 1200", m)
	}
	if res["mtu"] != 1200.0 || res["kv_writes"] != 20.0 || res["push"] != true {
		t.Errorf("mtu, kv_writes, push = %v, %v, %v", res["mtu"], res["kv_writes"], res["push"])
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, c := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 of 1..100", hundred, 100, 100},
		{"p99 of one", []float64{7}, 99, 7},
		{"p50 of two", []float64{1, 2}, 50, 1},
		{"p1 of 1..100", hundred, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := percentile(c.sorted, c.p); got != c.want {
				t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

// TestSimSmoke simulates two small clusters: one line per N, every round
// count measured.
func TestSimSmoke(t *testing.T) {
	out := runJSON(t, "-sim", "-n", "10,20", "-seed", "1", "-sim-steady-rounds", "3", "-sim-warm-rounds", "0")
	if len(out) != 2 {
		t.Fatalf("got %d JSON lines, want 2", len(out))
	}
	for _, res := range out {
		for _, f := range []string{"rounds_to_know_all", "rounds_to_all_live", "bytes_per_node_per_round", "digest_bytes"} {
			if v, ok := res[f].(float64); !ok || v <= 0 {
				t.Errorf("n=%v: %s = %v, want a positive number", res["n"], f, res[f])
			}
		}
		// Pushed over a network without delay, the key is everywhere at
		// the instant it is written.
		if v, ok := res["rounds_key_everywhere"].(float64); !ok || v < 0 {
			t.Errorf("n=%v: rounds_key_everywhere = %v, want a number >= 0", res["n"], res["rounds_key_everywhere"])
		}
		if c := res["digest_ceiling_nodes"].(float64); c < 2000 || c > 3000 {
			t.Errorf("digest ceiling %v nodes, want between 2,000 and 3,000", c)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "1"},
		{"-n", "10,20"}, // a list needs -sim
		{"-profile", "fast"},
		{"-loss", "1"},
		{"-sim", "-mtu", "511"},
		{"-sim", "-mtu", "65508"},
		{"-latency", "1ms"}, // needs -sim
		{"-sim", "-latency", "-1ms"},
		{"-writes-per-node-s", "0.1"}, // needs -sim
		{"-sim", "-writes-per-node-s", "NaN"},
		{"-sim", "-sim-warm-rounds", "-1"},
		{"-kv-gap", "0s"},
		{"-procs", "1"},
		{"-procs", "3", "-sim"},
		{"-procs", "3", "-procs-steady", "0s"},
		{"-procs", "3", "-demo-build", "static"},
		{"-n", "3", "--", "--interval_ms", "100"}, // arguments only pass to -procs
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestPushPullBound(t *testing.T) {
	// log3(81) = 4, ln(ln(81)) = ln(4.394...) = 1.480...
	if got := pushPullBound(81); got < 5.48 || got > 5.49 {
		t.Errorf("pushPullBound(81) = %v, want 5.48...", got)
	}
}

// TestDigestSizes prints the digest figures of BENCHMARKS.md (entry sizes,
// the digest ceiling) and checks how they relate:
//
//	go test -run TestDigestSizes -v ./cmd/chitchat-bench/
func TestDigestSizes(t *testing.T) {
	// A heartbeat takes 3 bytes up to 65,535 and 5 above.
	const short, long = 1000, 1 << 20
	entry := func(i int, heartbeat uint64) int {
		return digestSize(simCluster, ceilingDigest(i+1, nodeName, heartbeat)[i:]) - 1 // minus the array header
	}
	for _, hb := range []uint64{short, long} {
		lo, hi := entry(0, hb), entry(1999, hb)
		t.Logf("PERF digest entry, node_0..node_1999 on 127.0.0.1, heartbeat %d: %d-%d B", hb, lo, hi)
		if lo >= hi {
			t.Errorf("entry of node_0 %d B, of node_1999 %d B: a longer name must cost more", lo, hi)
		}
	}
	uuid := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }
	for _, c := range []struct {
		what string
		name func(int) string
	}{{"node_i", nodeName}, {"36-byte names", uuid}} {
		for _, cluster := range []string{simCluster, "default-cluster"} {
			below, above := digestCeiling(cluster, c.name, short), digestCeiling(cluster, c.name, long)
			t.Logf("PERF digest ceiling, %s, cluster %q: %d nodes (heartbeats < 65,536), %d nodes (above)", c.what, cluster, below, above)
			if above >= below || below < 1000 {
				t.Errorf("%s, cluster %q: ceilings %d and %d", c.what, cluster, below, above)
			}
		}
	}
}
