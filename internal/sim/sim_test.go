package sim

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var seedFlag = flag.Uint64("seed", 1, "simulation seed")

// fingerprint summarises a run: equal fingerprints mean the runs took the
// same path.
func fingerprint(s *Sim) string {
	out := fmt.Sprintf("t=%v %+v\n", s.Elapsed(), s.Stats())
	for i := range s.N() {
		e := s.Engine(i)
		out += fmt.Sprintf("%d live=%d dead=%d\n", i, len(e.LiveNodes()), len(e.DeadNodes()))
	}
	return out
}

func TestReplaysFromSeed(t *testing.T) {
	seed := *seedFlag
	t.Logf("seed=%d", seed)
	run := func() string {
		s, err := New(Config{N: 30, Seed: seed, Loss: 0.2, Latency: time.Millisecond, Jitter: 5 * time.Millisecond, Codec: true})
		if err != nil {
			t.Fatal(err)
		}
		s.RunFor(5 * time.Second)
		s.Kill(7)
		s.RunFor(10 * time.Second)
		return fingerprint(s)
	}
	if diff := cmp.Diff(run(), run()); diff != "" {
		t.Errorf("two runs with seed %d differ (-first +second):\n%s", seed, diff)
	}
}

func TestConvergeAndDetect(t *testing.T) {
	s, err := New(Config{N: 50, Seed: *seedFlag, Codec: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all live after %v", converge(t, s, 30*time.Second))
	if err := s.Engine(3).Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	d, ok := s.RunUntil(10*time.Second, 100*time.Millisecond, func() bool {
		return s.All(func(i int) bool { return s.HasValue(i, 3, "k", "v") })
	})
	if !ok {
		t.Fatal("key did not spread within 10s")
	}
	t.Logf("key everywhere after %v", d)
	s.Kill(49)
	d, ok = s.RunUntil(30*time.Second, 100*time.Millisecond, func() bool {
		return s.All(func(i int) bool { return s.DeemsDead(i, 49) })
	})
	if !ok {
		t.Fatal("node 49 not detected dead by everyone within 30s")
	}
	t.Logf("dead everywhere after %v", d)
}

func TestPartitionHeals(t *testing.T) {
	s, err := New(Config{N: 20, Seed: *seedFlag, Seeds: []int{0, 10}})
	if err != nil {
		t.Fatal(err)
	}
	converge(t, s, 30*time.Second)
	s.Partition(span(0, 10), span(10, 20))
	s.RunFor(30 * time.Second)
	if !s.DeemsDead(0, 15) || !s.DeemsDead(15, 0) {
		t.Fatal("sides do not see each other dead during the partition")
	}
	s.Engine(2).Set("a", "1")
	s.Engine(12).Set("b", "2")
	s.Heal()
	d, ok := s.RunUntil(30*time.Second, 100*time.Millisecond, func() bool {
		return s.All(s.SeesLive) && s.All(func(i int) bool { return s.HasValue(i, 2, "a", "1") && s.HasValue(i, 12, "b", "2") })
	})
	if !ok {
		t.Fatal("no convergence after healing")
	}
	t.Logf("healed in %v", d)
}
