package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sampleByCopy is the reference for sample: a partial Fisher-Yates shuffle
// over a copy of s.
func sampleByCopy(r randSource, s []netip.AddrPort, k int) []netip.AddrPort {
	c := slices.Clone(s)
	if len(c) <= k {
		return c
	}
	for i := range k {
		j := i + r.IntN(len(c)-i)
		c[i], c[j] = c[j], c[i]
	}
	return c[:k]
}

// TestSampleMatchesShuffleOfCopy: sample draws the same random numbers and
// returns the same elements as a shuffle of a copy, and leaves s untouched.
func TestSampleMatchesShuffleOfCopy(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := src.IntN(12)
		k := src.IntN(5)
		s := make([]netip.AddrPort, n)
		for i := range s {
			s[i] = netip.AddrPortFrom(localhost, uint16(10000+i))
		}
		before := slices.Clone(s)
		seed := src.Uint64()
		ref, r := rand.New(rand.NewPCG(seed, 0)), rand.New(rand.NewPCG(seed, 0))
		want := sampleByCopy(ref, s, k)
		got := sample(r, s, addrOf, k)
		if !slices.Equal(got, want) {
			t.Fatalf("sample(n=%d, k=%d, seed=%d) = %v, want %v", n, k, seed, got, want)
		}
		if !slices.Equal(s, before) {
			t.Fatalf("sample modified its input")
		}
		if r.Uint64() != ref.Uint64() {
			t.Fatalf("sample(n=%d, k=%d) consumed a different number of draws", n, k)
		}
	}
}

// TestCreatedNodesOwnTheirNames: decoded digest names share one copy of the
// datagram, but the node states created from them hold names of their own.
func TestCreatedNodesOwnTheirNames(t *testing.T) {
	a := newTestEngine(t, benchID(1))
	b := newTestEngine(t, benchID(2))
	m, err := DecodeMessage(EncodeMessage(a.CreateSyn(t0)))
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*Syn).Digest
	b.Process(t0, m)
	ns, ok := b.lookup(benchID(1))
	if !ok {
		t.Fatal("node 1 not created")
	}
	if unsafe.StringData(ns.id.Name) == unsafe.StringData(d[0].ID.Name) {
		t.Error("the node state's name shares the decoded datagram's memory")
	}
}

func newTestEngine(t *testing.T, id NodeID) *Engine {
	t.Helper()
	e, err := NewEngine(Config{ID: id, ClusterID: "default-cluster"}, rand.New(rand.NewPCG(1, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cloneDelta copies d deeply, so that later writes to the memory d shares
// cannot change the copy.
func cloneDelta(d Delta) Delta {
	c := Delta{enc: slices.Clone(d.enc)}
	for _, nd := range d.Nodes {
		nd.KeyValues = slices.Clone(nd.KeyValues)
		c.Nodes = append(c.Nodes, nd)
	}
	return c
}

// TestDeltaSurvivesTheNextOne: the engine reuses its delta writer and
// scratch buffers, but a delta it returned is the caller's: computing the
// next deltas (smaller, larger, empty) changes neither its nodes nor its
// encoding.
func TestDeltaSurvivesTheNextOne(t *testing.T) {
	e := benchEngine(t, 0, 200)
	full := e.deltaFor(t0, nil, MaxDatagramSize)
	small := e.deltaFor(t0, nil, 1200)
	wantFull, wantSmall := cloneDelta(full), cloneDelta(small)
	if len(full.Nodes) == 0 || len(small.Nodes) == 0 || len(small.Nodes) >= len(full.Nodes) {
		t.Fatalf("setup: deltas of %d and %d nodes", len(full.Nodes), len(small.Nodes))
	}
	for range 3 {
		e.deltaFor(t0, laggingDigest(e), 1200)
		e.deltaFor(t0, nil, MaxDatagramSize)
		e.deltaFor(t0, e.CreateSyn(t0).Digest, MaxDatagramSize)
	}
	opts := cmp.Options{cmp.AllowUnexported(Delta{}), cmpopts.EquateComparable(netip.AddrPort{})}
	if diff := cmp.Diff(wantFull, full, opts); diff != "" {
		t.Errorf("full delta changed by later deltas (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(wantSmall, small, opts); diff != "" {
		t.Errorf("small delta changed by later deltas (-before +after):\n%s", diff)
	}
	// And the cached encoding still decodes to the delta.
	for name, d := range map[string]Delta{"full": full, "small": small} {
		got, err := DecodeMessage(EncodeMessage(&Ack{Delta: d}))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(d.Nodes, got.(*Ack).Delta.Nodes, opts); diff != "" {
			t.Errorf("%s: encoding and nodes disagree (-nodes +decoded):\n%s", name, diff)
		}
	}
}

// TestTargetSetsFollowTheCluster: the cached target sets equal sets rebuilt
// from scratch after every kind of change: nodes appearing, turning dead,
// coming back, leaving, being collected, and the seeds changing.
func TestTargetSetsFollowTheCluster(t *testing.T) {
	cfg := Config{ID: benchID(0), ClusterID: "default-cluster"}
	cfg.FailureDetector.DeadNodeGracePeriod = 20 * time.Second
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(3, 3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() targetSets {
		saved := e.targets
		e.targets = targetSets{}
		got := *e.targetSets()
		e.targets = saved
		return got
	}
	// check compares the cache with a rebuild; it runs where Tick and the
	// Server read the sets: between heartbeats and the liveness update too.
	check := func(step int, where string) {
		t.Helper()
		want, got := fresh(), *e.targetSets()
		for name, pair := range map[string][2][]netip.AddrPort{
			"live": {addrsOf(want.live), addrsOf(got.live)}, "dead": {addrsOf(want.dead), addrsOf(got.dead)},
			"peers": {addrsOf(want.peers), addrsOf(got.peers)}, "seeds": {want.seeds, got.seeds},
		} {
			if !slices.Equal(pair[0], pair[1]) {
				t.Fatalf("step %d, %s: cached %s targets %v, rebuilt %v", step, where, name, pair[1], pair[0])
			}
		}
	}
	r := rand.New(rand.NewPCG(4, 4))
	now := t0
	heartbeats := map[int]uint64{}
	kinds := map[string]int{}
	for step := range 400 {
		now = now.Add(time.Duration(r.IntN(1500)) * time.Millisecond)
		var d Digest
		for i := 1; i <= 12; i++ {
			// Nodes 1-4 always beat, 5-8 beat in bursts, 9-12 rarely.
			if i <= 4 || (i <= 8 && (step/40)%2 == 0) || r.IntN(30) == 0 {
				heartbeats[i]++
				d = append(d, DigestEntry{ID: benchID(i), NodeDigest: NodeDigest{Heartbeat: heartbeats[i]}})
			}
		}
		e.reportHeartbeats(now, d.normalize())
		check(step, "after the heartbeats")
		switch r.IntN(20) {
		case 0:
			e.SetSeeds([]netip.AddrPort{benchID(r.IntN(13)).Addr, benchID(r.IntN(13)).Addr})
			kinds["seeds"]++
		case 1:
			id := benchID(1 + r.IntN(12))
			kvs := map[string]VersionedValue{LeftKey: {Value: "", Version: 1}}
			if e.ResetNodeStateIfUpdate(now, id, kvs, 1, 0) == nil {
				kinds["left"]++
			}
		}
		e.UpdateLiveness(now)
		kinds[fmt.Sprintf("live=%d", len(e.LiveNodes()))]++
		if len(e.DeadNodes()) > 0 {
			kinds["dead"]++
		}
		check(step, "after UpdateLiveness")
	}
	for _, k := range []string{"seeds", "left", "dead", "live=1"} {
		if kinds[k] == 0 {
			t.Errorf("the walk never reached %q: %v", k, kinds)
		}
	}
}

// TestNeverLiveQueueBounded: the queue of never-live nodes that eviction
// draws from stays within 2×MaxNodes under churn (nodes that come and are
// garbage collected while the engine never fills up: it used to grow by one
// entry per node ever created), and eviction still drops the oldest
// never-live node.
func TestNeverLiveQueueBounded(t *testing.T) {
	cfg := Config{ID: benchID(0), ClusterID: "default-cluster"}
	cfg.Limits.MaxNodes = 8
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(1, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	create := func(i int) {
		t.Helper()
		e.reportHeartbeats(t0, Digest{{ID: benchID(i), NodeDigest: NodeDigest{Heartbeat: 1}}})
		if _, ok := e.lookup(benchID(i)); !ok {
			t.Fatalf("node %d not created", i)
		}
	}
	for i := 1; i <= 1000; i++ {
		create(i)
		e.removeNode(benchID(i))
		if n := len(e.neverLive); n > 2*cfg.Limits.MaxNodes {
			t.Fatalf("after %d nodes came and went, the never-live queue holds %d entries", i, n)
		}
	}
	// Fill up with never-live nodes; the next one evicts the oldest.
	for i := 2001; i <= 2008; i++ {
		create(i)
	}
	if _, ok := e.lookup(benchID(2001)); ok {
		t.Error("the oldest never-live node was not evicted")
	}
	for i := 2002; i <= 2008; i++ {
		if _, ok := e.lookup(benchID(i)); !ok {
			t.Errorf("node %d evicted, want only the oldest (2001)", i)
		}
	}
	if got := e.Stats().NodesEvicted; got != 1 {
		t.Errorf("NodesEvicted = %d, want 1", got)
	}
}

// addrsOf returns the advertised addresses of a target set.
func addrsOf(set []*NodeState) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ns := range set {
		out = append(out, ns.id.Addr)
	}
	return out
}
