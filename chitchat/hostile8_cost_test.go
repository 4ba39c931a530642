package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// The ring walks of monitors (monitorTarget in Tick, watchPredecessors in
// UpdateLiveness) skip nodes that are not live: a forger that fills the
// table (Limits.MaxNodes, 10,000) with nodes named once and never risen
// makes each walk cross all of them. The round already judges every node
// (UpdateLiveness is O(N)), so the walk adds a pass over byRef at most:
// compare the walks with the whole Tick.
func BenchmarkHostile8TickUnevidencedRing(b *testing.B) {
	e := newEngine(b, forTest(1))
	now := t0
	ids := make([]NodeID, 0, 9_999)
	for i := range cap(ids) {
		ids = append(ids, NodeID{Name: fmt.Sprintf("n%d", i), Generation: 1,
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 7000)})
	}
	for lo := 0; lo < len(ids); lo += 50 {
		var d Digest
		for _, id := range ids[lo:min(lo+50, len(ids))] {
			d = append(d, DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: 1}})
		}
		e.Step(now, Inbound{From: attacker}, &Syn{ClusterID: "default-cluster", Digest: d.normalize()})
	}
	// The only live nodes are our three farthest successors (nearest
	// predecessors): monitorTarget crosses the whole ring.
	i := e.ringIndex(e.selfNS)
	n := len(e.byRef)
	for _, j := range []int{n - 1, n - 2, n - 3} {
		e.observeHeartbeat(now, e.byRef[(i+j)%n], 2, true, true)
	}
	e.Tick(now)
	// Unevidenced nodes are not advertised, so here the whole digest fits;
	// in a large cluster it would not: force monitors on for the walks.
	e.partialCover = true
	if got := len(e.LiveNodes()); got != 4 || !e.monitoring() || n != 10_000 {
		b.Fatalf("%d live nodes (want 4), monitoring %v, %d held", got, e.monitoring(), n)
	}
	b.Run("Tick", func(b *testing.B) {
		for range b.N {
			now = now.Add(time.Second)
			e.partialCover = true
			e.Tick(now)
		}
	})
	b.Run("walks", func(b *testing.B) {
		e.partialCover = true
		for range b.N {
			e.monitorTarget()
			e.watchPredecessors(now)
		}
	})
}
