package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/internal/sim"
)

// TestSimMTU runs the issue-13 figures on a small cluster: with -mtu 1200
// no datagram above 1,200 bytes is attempted, nothing is dropped for size,
// nobody is falsely seen dead, the killed node is detected by every
// survivor, and the memory and key-spread figures are there.
func TestSimMTU(t *testing.T) {
	out := runJSON(t, "-sim", "-n", "20", "-seed", "1", "-mtu", "1200", "-latency", "1ms",
		"-sim-steady-rounds", "20", "-sim-warm-rounds", "100", "-writes-per-node-s", "1")
	res := out[0]
	if errs, _ := res["errors"].([]any); len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if m := res["max_datagram_bytes"].(float64); m <= 0 || m > 1200 {
		t.Errorf("max_datagram_bytes = %v, want in (0, 1200]", m)
	}
	for f, want := range map[string]float64{"over_mtu_dropped": 0, "false_deaths": 0, "mtu": 1200, "latency_s": 0.001,
		"warm_rounds": 100, "writes": 20 * 20 * 0.3} {
		if res[f] != want {
			t.Errorf("%s = %v, want %v", f, res[f], want)
		}
	}
	if res["false_deaths_after_all_live"] != 0.0 {
		t.Errorf("false_deaths_after_all_live = %v, want 0", res["false_deaths_after_all_live"])
	}
	for _, f := range []string{"heap_bytes_per_observed_node", "heap_live_bytes_per_observed_node", "detect_rounds_median", "detect_rounds_last", "kv_spread_s"} {
		if v, ok := res[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, res[f])
		}
	}
	if m, l := res["detect_rounds_median"].(float64), res["detect_rounds_last"].(float64); m > l {
		t.Errorf("detection: median %v rounds > last %v", m, l)
	}
	// The key needs at least one 1 ms hop.
	if v := res["kv_spread_s"].(float64); v < 0.001 {
		t.Errorf("kv_spread_s = %v with a 1 ms link delay", v)
	}
	if res["sim_rounds"].(float64) < 100 {
		t.Errorf("sim_rounds %v < -sim-warm-rounds 100", res["sim_rounds"])
	}
}

// TestLiveTrackerCountsFalseDeaths isolates one node (not killed) for
// long enough to be found dead, and checks that every other node's
// transition is counted as a false death of that one node; then kills
// another and checks that its death is timed, not counted.
func TestLiveTrackerCountsFalseDeaths(t *testing.T) {
	const n = 8
	s, err := sim.New(sim.Config{N: n, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr := newLiveTracker(s)
	if _, ok := s.RunUntil(30*time.Second, 10*time.Millisecond, func() bool {
		return s.All(func(i int) bool { return tr.allLive(i, n) })
	}); !ok {
		t.Fatal("no convergence")
	}
	if tr.FalseDeaths != 0 {
		t.Fatalf("%d false deaths before any fault", tr.FalseDeaths)
	}
	others := []int{0, 1, 2, 3, 4, 5, 6}
	s.Partition(others, []int{7})
	s.RunFor(30 * time.Second)
	// Node 7 lost the other 7, and the other 7 lost node 7.
	if tr.FalseDeaths != 2*(n-1) || tr.FalseSubjects() != n {
		t.Errorf("after isolating node 7: %d false deaths of %d nodes, want %d of %d", tr.FalseDeaths, tr.FalseSubjects(), 2*(n-1), n)
	}
	s.Heal()
	s.RunFor(30 * time.Second)
	before := tr.FalseDeaths
	tr.kill(3)
	if _, ok := s.RunUntil(60*time.Second, time.Millisecond, tr.detected); !ok {
		t.Fatalf("node 3 not detected: %d survivors to go", tr.pending)
	}
	if got := len(tr.detectTimes()); got != n-1 {
		t.Errorf("%d detection times, want %d", got, n-1)
	}
	for _, d := range tr.detectTimes() {
		if d <= 0 {
			t.Errorf("detection time %v", d)
		}
	}
	if tr.FalseDeaths != before {
		t.Errorf("the killed node's death counted as %d false deaths", tr.FalseDeaths-before)
	}
}

func TestLoadSchedule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sched := loadSchedule(50, 0.1, 30*time.Second, r)
	if len(sched) != 150 {
		t.Fatalf("%d writes, want 3 per node", len(sched))
	}
	perNode := map[int][]time.Duration{}
	for k, w := range sched {
		if k > 0 && w.at < sched[k-1].at {
			t.Fatalf("write %d at %v before write %d at %v", k, w.at, k-1, sched[k-1].at)
		}
		perNode[w.node] = append(perNode[w.node], w.at)
	}
	for i, ats := range perNode {
		if len(ats) != 3 || ats[1]-ats[0] != 10*time.Second || ats[2]-ats[1] != 10*time.Second {
			t.Errorf("node %d writes at %v, want 3, 10 s apart", i, ats)
		}
	}
	if got := loadSchedule(50, 0, time.Minute, r); got != nil {
		t.Errorf("rate 0: %d writes", len(got))
	}
}

// TestHeapGuard: a heap above the limit stops the run with a message
// saying where it was.
func TestHeapGuard(t *testing.T) {
	runtime.GC() // the guard reads the live heap as of the last GC
	exited := make(chan int, 1)
	var msg string
	stop := heapGuard(1, time.Millisecond, func(uint64) string { return "at n=7, warm-up" },
		func(format string, a ...any) { msg = fmt.Sprintf(format, a...) },
		func(code int) { exited <- code })
	code := <-exited
	stop()
	if code != 1 || !strings.Contains(msg, "above the limit") || !strings.Contains(msg, "at n=7, warm-up") {
		t.Errorf("exit(%d) after %q", code, msg)
	}
}

func TestSimPlaceDescribe(t *testing.T) {
	for _, c := range []struct {
		name  string
		place *simPlace
		heap  uint64
		want  string
	}{
		{"before any", nil, 1, "at the start"},
		{"every node known", &simPlace{n: 100, phase: "warm-up", round: 12.5}, 1_000_000,
			"at n=100, warm-up, round 12.5: 100 B of heap per observed node"},
		{"while nodes are discovered", &simPlace{n: 100, phase: "know all", round: 3, known: 20}, 1_000_000,
			"at n=100, know all, round 3.0: 500 B of heap per node state held (a node knows 20 nodes on average)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.place.describe(c.heap); got != c.want {
				t.Errorf("describe = %q, want %q", got, c.want)
			}
		})
	}
}
