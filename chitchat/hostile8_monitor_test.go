package chitchat

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Ring monitors (monitor.go, 933efbb) against a forger.

// hostile8Between reports whether r lies strictly after a and before b on
// the ring.
func hostile8Between(a, r, b uint64) bool {
	if a < b {
		return a < r && r < b
	}
	return r > a || r < b
}

// hostile8Grind returns k NodeIDs whose refs land strictly between a and b
// on the ring, sorted by ref from a on: a few thousand SHA-256s when the gap
// is 1/N of the ring.
func hostile8Grind(t *testing.T, a, b uint64, k int) []NodeID {
	t.Helper()
	var ids []NodeID
	for i := 0; len(ids) < k; i++ {
		if i > 1<<22 {
			t.Fatal("no ref found in the gap")
		}
		id := NodeID{Name: fmt.Sprintf("fake-%d", i), Generation: 1, Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), uint16(1000+i%60000))}
		if hostile8Between(a, nodeRef(id), b) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(x, y NodeID) int {
		dx, dy := nodeRef(x)-a, nodeRef(y)-a // distance after a, mod 2^64
		switch {
		case dx < dy:
			return -1
		case dx > dy:
			return 1
		}
		return 0
	})
	return ids
}

// hostile8Feed forges, to e, heartbeat hb for each fake (a Syn from the
// attacker's address): a baseline the first time, a rise after.
func hostile8Feed(t *testing.T, now time.Time, e *Engine, fakes []NodeID, hb uint64) {
	t.Helper()
	var d Digest
	for _, id := range fakes {
		d = append(d, DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: hb}})
	}
	e.Step(now, Inbound{From: attacker}, wire(t, &Syn{ClusterID: "default-cluster", Digest: d.normalize()}))
}

// A node whose monitors are all dead, or whose monitors are a forger's
// invented nodes, is still found dead: by the observer that becomes its
// monitor once the dead ones are found dead (its fourth successor), at the
// threshold, and by every other observer at deferFactor times the
// threshold at worst. Views are sparse here (a rise every 5 s, more than
// monitorCount rounds of 1 s), so deferring applies.
//
// The forger's part: NodeIDs whose refs land between the victim and its
// first successor take a few thousand SHA-256s (the gap is 1/N of the
// ring); a digest naming them is a baseline, not evidence, and makes
// nobody monitor anything; one forged rise makes them live, the victim's
// monitors (it sends them one Syn a round) and its successors' nearest
// predecessors. Its cost to the victim: found dead at the doubled
// threshold instead of the threshold, no notice from a monitor.
func TestHostile8NoLiveMonitor(t *testing.T) {
	const every = 5 * time.Second
	for _, tc := range []struct {
		name     string
		dead     int  // x and this many successors die
		fakes    bool // forged nodes between x and its first successor
		observer int  // position after x on the ring
		deferred bool // the observer judges x at deferFactor times the threshold
	}{
		{"monitors alive, first successor", 0, false, 1, false},
		{"monitors dead, fourth successor", 3, false, 4, false},
		{"monitors dead, far observer", 3, false, 8, true},
		{"forged monitors, first successor", 0, true, 1, true},
		{"forged monitors, far observer", 0, true, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := partialPushNet(t, 12)
			x := p.engines[0].node(p.engines[0].Self())
			ringX := append([]*NodeState{x}, ringFrom(p.engines[0])...) // x, then its successors
			var e *Engine
			for _, c := range p.engines {
				if c.Self() == *ringX[tc.observer].id {
					e = c
				}
			}
			xs := e.node(*x.id)
			var fakes []*NodeState
			if tc.fakes {
				ids := hostile8Grind(t, x.ref, ringX[1].ref, monitorCount)
				hostile8Feed(t, p.now, e, ids, 1)
				e.UpdateLiveness(p.now)
				for _, id := range ids {
					if isLive(e, id) {
						t.Fatalf("%v live on a baseline alone", id)
					}
				}
				if slices.Contains(e.watched[:], xs) != (tc.observer <= monitorCount) {
					t.Fatalf("a baseline moved the watched set: %v", e.watched)
				}
				hostile8Feed(t, p.now, e, ids, 2)
				for _, id := range ids {
					fakes = append(fakes, e.node(id))
				}
			}
			dead := map[*NodeState]bool{}
			for i := 0; i <= tc.dead; i++ {
				dead[e.node(*ringX[i].id)] = true
			}
			var others []*NodeState
			for _, ns := range e.states {
				if *ns.id != e.Self() {
					others = append(others, ns)
				}
			}
			rise := func(now time.Time, all bool) {
				for _, ns := range others {
					if all || !dead[ns] {
						e.observeHeartbeat(now, ns, ns.heartbeat+1, false, false)
					}
				}
			}
			now := p.now
			for range 40 { // the window's mean is every, whatever came before
				now = now.Add(every)
				rise(now, true)
				e.UpdateLiveness(now)
			}
			if tc.fakes && !slices.Contains(e.watched[:], fakes[0]) && tc.observer == 1 {
				t.Fatalf("the forged nodes are not the first successor's predecessors: watched %v", e.watched)
			}
			mean, ok := e.fd.Mean(xs.slot)
			if !ok {
				t.Fatal("no mean")
			}
			if tc.deferred {
				// An observer that defers expects no more rises than
				// from a typical peer (Bar.PriorFloor).
				mean = max(mean, e.fd.model.Prior())
			}
			last := now
			var deadAt time.Duration
			for s := 1; s <= 200 && deadAt == 0; s++ {
				now = now.Add(time.Second)
				if now.Sub(last)%every == 0 {
					rise(now, false)
				}
				e.UpdateLiveness(now)
				if !isLive(e, *x.id) {
					deadAt = now.Sub(last)
				}
			}
			if deadAt == 0 {
				t.Fatalf("x never found dead in 200 s (mean interval %v)", mean)
			}
			k := float64(deadAt) / float64(mean) // in mean intervals
			lo, hi := 0.0, e.cfg.FailureDetector.PhiThreshold+1
			if tc.deferred {
				lo, hi = e.cfg.FailureDetector.PhiThreshold, deferFactor*e.cfg.FailureDetector.PhiThreshold+1
			}
			t.Logf("dead after %v = %.1f mean intervals of %v", deadAt, k, mean)
			if k <= lo || k > hi {
				t.Errorf("x found dead %.1f mean intervals after its last rise, want in (%.0f, %.0f]", k, lo, hi)
			}
		})
	}
}

// Grinding the victim's monitors: a digest naming forged nodes just after
// the victim on the ring is a baseline, not evidence: they are not live,
// and the victim's monitor targets stay its honest successors. One forged
// rise makes them live (hearsay rises are evidence, as for any node: the
// known "keep a node looking alive" of docs/PROTOCOL.md §17.3), and then
// every monitor target of the victim is the forger's (logged, not
// asserted: a limitation, not a defence).
func TestHostile8GrindedMonitorsNeedEvidence(t *testing.T) {
	p := partialPushNet(t, 12)
	x := p.engines[5]
	ring := ringFrom(x)
	fakes := hostile8Grind(t, x.node(x.Self()).ref, ring[0].ref, monitorCount)
	targets := func() (got []netip.AddrPort) {
		for r := range uint32(monitorCount) {
			x.round = r
			a, ok := x.monitorTarget()
			if !ok {
				t.Fatal("no monitor target")
			}
			got = append(got, a)
		}
		return got
	}
	honest := []netip.AddrPort{ring[0].id.Addr, ring[1].id.Addr, ring[2].id.Addr}
	hostile8Feed(t, p.now, x, fakes, 1<<40)
	x.UpdateLiveness(p.now)
	for _, id := range fakes {
		if isLive(x, id) {
			t.Errorf("%v live after a digest that only named it", id)
		}
	}
	if got := targets(); !slices.Equal(got, honest) {
		t.Errorf("monitor targets %v after a baseline, want the honest successors %v", got, honest)
	}
	hostile8Feed(t, p.now, x, fakes, 1<<40+1)
	t.Logf("after one forged rise: monitor targets %v (forged: %v)", targets(), fakes)
}
