package sim

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/race"
)

// Upstream perf-test settings (tests/perf_test.rs): 300 ms rounds, initial interval
// 300 ms, phi 8, seeds = node 0.
func upstreamConfig(n int, seed uint64, loss float64) Config {
	return Config{N: n, Seed: seed, Loss: loss, GossipInterval: 300 * time.Millisecond}
}

func converge(t *testing.T, s *Sim, limit time.Duration) time.Duration {
	t.Helper()
	d, ok := s.RunUntil(limit, 100*time.Millisecond, func() bool { return s.All(s.SeesLive) })
	if !ok {
		t.Fatalf("%d nodes did not converge within %v", s.N(), limit)
	}
	return d
}

// span returns the node indices lo, lo+1, …, hi-1.
func span(lo, hi int) []int {
	s := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// falseDeaths counts (observer, subject) pairs where an up node deems another
// up node dead.
func falseDeaths(s *Sim) int {
	n := 0
	for i := range s.N() {
		if !s.Node(i).Up() {
			continue
		}
		n += s.N() - len(s.Engine(i).LiveNodes())
	}
	return n
}

// TestNoFalseDeathAtHalfLoss is upstream's T116/T117 (faulty network
// stability), at 10 and 100 nodes: after convergence, 30 s at 50% loss and
// no node ever sees fewer than N live nodes.
func TestNoFalseDeathAtHalfLoss(t *testing.T) {
	for _, n := range []int{10, 100} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			s, err := New(upstreamConfig(n, *seedFlag, 0.5))
			if err != nil {
				t.Fatal(err)
			}
			d := converge(t, s, 60*time.Second)
			for range 300 {
				s.RunFor(100 * time.Millisecond)
				if f := falseDeaths(s); f > 0 {
					t.Fatalf("seed %d: %d false deaths %v after convergence (converged in %v)", *seedFlag, f, s.Elapsed()-d, d)
				}
			}
			t.Logf("PERF sim n=%d loss=0.5 converged=%v no false death for 30s", n, d)
		})
	}
}

// TestPartitionHealsWithoutLoss splits 100 nodes 60/40 for two minutes,
// writes on both sides, heals, and requires every key on every node within
// a bounded number of rounds.
func TestPartitionHealsWithoutLoss(t *testing.T) {
	// 100 nodes, or 40 under the race detector (which makes the 100-node
	// run take two minutes and finds nothing more in it: the simulation is
	// one goroutine).
	n := 100
	if race.Enabled {
		n = 40
	}
	s, err := New(Config{N: n, Seed: *seedFlag, Seeds: []int{0, n * 7 / 10}, GossipInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	converge(t, s, 60*time.Second)
	a, b := span(0, n*6/10), span(n*6/10, n)
	s.Partition(a, b)
	type write struct {
		node       int
		key, value string
	}
	var writes []write
	for k := range 20 {
		for _, side := range [][]int{a, b} {
			w := write{side[(k*7)%len(side)], fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", k, side[0])}
			if err := s.Engine(w.node).Set(w.key, w.value); err != nil {
				t.Fatal(err)
			}
			writes = append(writes, w)
		}
		s.RunFor(6 * time.Second)
	}
	if !s.DeemsDead(0, n-1) || !s.DeemsDead(n-1, 0) {
		t.Fatal("the two sides do not see each other dead during the partition")
	}
	s.Heal()
	healed := func() bool {
		if !s.All(s.SeesLive) {
			return false
		}
		for _, w := range writes {
			if !s.All(func(i int) bool { return s.HasValue(i, w.node, w.key, w.value) }) {
				return false
			}
		}
		return true
	}
	d, ok := s.RunUntil(60*time.Second, 300*time.Millisecond, healed)
	rounds := int(d / (300 * time.Millisecond))
	if !ok || rounds > 20 {
		t.Fatalf("after healing: converged=%v in %d rounds (%v); want ≤ 20 rounds", ok, rounds, d)
	}
	t.Logf("PERF sim n=%d partition 60/40 for 2m: %d keys written, every key everywhere and all live %d rounds (%v) after healing", n, len(writes), rounds, d)
}

// TestRestartWithNewGeneration: a node restarted with a larger generation
// replaces its old incarnation everywhere: the new one is live, the old one
// dead, then garbage collected.
func TestRestartWithNewGeneration(t *testing.T) {
	cfg := Config{N: 20, Seed: *seedFlag, Node: func(i int, c *chitchat.Config) {
		c.FailureDetector.DeadNodeGracePeriod = 20 * time.Second
	}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	converge(t, s, 30*time.Second)
	old := s.Engine(5).Self()
	if err := s.Restart(5, 1); err != nil {
		t.Fatal(err)
	}
	d := converge(t, s, 30*time.Second)
	gone := func() bool {
		return s.All(func(i int) bool { _, ok := s.Engine(i).NodeState(old); return !ok })
	}
	d2, ok := s.RunUntil(60*time.Second, 300*time.Millisecond, gone)
	if !ok {
		t.Fatal("the old incarnation was not garbage collected everywhere")
	}
	t.Logf("new generation live everywhere after %v; old one collected everywhere %v later", d, d2)
}

var sweep = flag.Bool("sweep", false, "run the loss sweep (slow): at which loss do false deaths start at 100 nodes")

// TestLossSweep measures, at 100 nodes with upstream's settings, how many
// false deaths one minute at each loss rate produces. Run with -sweep.
func TestLossSweep(t *testing.T) {
	if !*sweep {
		t.Skip("run with -sweep")
	}
	for _, loss := range []float64{0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9} {
		s, err := New(upstreamConfig(100, *seedFlag, 0))
		if err != nil {
			t.Fatal(err)
		}
		converge(t, s, 60*time.Second)
		s.SetLoss(loss)
		marks, worst := 0, 0
		for range 600 {
			s.RunFor(100 * time.Millisecond)
			f := falseDeaths(s)
			marks += f
			worst = max(worst, f)
		}
		t.Logf("PERF sweep n=100 loss=%.2f false-death observations=%d worst instant=%d pairs", loss, marks, worst)
	}
}
