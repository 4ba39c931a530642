package chitchat

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Upstream's cluster-state tests of digests and deltas (T32–T35, T42,
// T44–T49, T59). Upstream's ClusterState has no self node; here the engine's
// self is id(9999), which never has news (max version 0) and so never shows
// up in a delta.

const unbounded = MaxDatagramSize

func clusterEngine(tb testing.TB) *Engine {
	tb.Helper()
	cfg := forTest(9999)
	cfg.MarkedForDeletionGracePeriod = 10 * time.Second
	cfg.FailureDetector.DeadNodeGracePeriod = 4 * time.Second
	return newEngine(tb, cfg)
}

// digestOf builds a peer digest giving (gc, max) per port.
func digestOf(entries ...[3]uint64) Digest {
	var d Digest
	for _, e := range entries {
		d = append(d, DigestEntry{ID: id(uint16(e[0])), NodeDigest: NodeDigest{LastGCVersion: e[1], MaxVersion: e[2]}})
	}
	return d.normalize()
}

// nodeOrder returns the ports of the node deltas of d.
func nodeOrder(d Delta) []uint16 {
	var ports []uint16
	for _, nd := range d.Nodes {
		ports = append(ports, nd.ID.Addr.Port())
	}
	return ports
}

// checkDelta checks the delta is within budget and round-trips.
func checkDelta(tb testing.TB, d Delta, budget int) {
	tb.Helper()
	if len(d.enc) > budget {
		tb.Fatalf("delta of %d bytes exceeds its budget %d", len(d.enc), budget)
	}
	if diff := cmp.Diff(d, decodeDeltaBytes(tb, d.enc), cmpOpts); diff != "" {
		tb.Fatalf("delta round trip mismatch (-want +got):\n%s", diff)
	}
}

// T32 test_sorted_stale_nodes_empty
func TestT32_NoStaleNodes(t *testing.T) {
	e := clusterEngine(t)
	if d := e.deltaFor(t0, nil, unbounded); len(d.Nodes) != 0 {
		t.Errorf("delta of an engine without news = %v, want empty", nodeOrder(d))
	}
	ns := addNode(t, e, id(10001))
	setVersion(t, ns, "k", "v", 1)
	if d := e.deltaFor(t0, digestOf([3]uint64{10001, 0, 1}), unbounded); len(d.Nodes) != 0 {
		t.Errorf("delta for an up-to-date peer = %v, want empty", nodeOrder(d))
	}
}

// T33 test_sorted_stale_nodes_insert: unknown nodes, smallest max version
// first; a node with no key-values but a max version gets SetMaxVersion.
func TestT33_UnknownNodesSmallestFirst(t *testing.T) {
	e := clusterEngine(t)
	addNode(t, e, id(10001)).maxVersion = 2
	setVersion(t, addNode(t, e, id(10002)), "key_a", "", 1)
	n3 := addNode(t, e, id(10003))
	setVersion(t, n3, "key_b", "", 2)
	setVersion(t, n3, "key_c", "", 3)
	d := e.deltaFor(t0, nil, unbounded)
	checkDelta(t, d, unbounded)
	if diff := cmp.Diff([]uint16{10002, 10001, 10003}, nodeOrder(d)); diff != "" {
		t.Errorf("node order mismatch (-want +got):\n%s", diff)
	}
	want := NodeDelta{ID: id(10001), MaxVersion: 2}
	if diff := cmp.Diff(want, d.Nodes[1], cmpOpts); diff != "" {
		t.Errorf("max-version-only node delta mismatch (-want +got):\n%s", diff)
	}
}

// T34 test_sorted_stale_nodes_offer
func TestT34_KnownNodeCandidates(t *testing.T) {
	e := clusterEngine(t)
	addNode(t, e, id(10001))
	setVersion(t, addNode(t, e, id(10002)), "key_a", "", 1)
	n3 := addNode(t, e, id(10003))
	for i, k := range []string{"key_a", "key_b", "key_c"} {
		setVersion(t, n3, k, "", uint64(i+1))
	}
	d := e.deltaFor(t0, digestOf([3]uint64{10001, 0, 1}, [3]uint64{10002, 0, 1}, [3]uint64{10003, 0, 1}), unbounded)
	want := []NodeDelta{{ID: id(10003), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("key_b", "", 2, StatusSet), kv("key_c", "", 3, StatusSet)}, MaxVersion: 3}}
	if diff := cmp.Diff(want, d.Nodes, cmpOpts); diff != "" {
		t.Errorf("delta mismatch (-want +got):\n%s", diff)
	}
}

// T35 test_sorted_stale_nodes_into_iter (docs/PROTOCOL.md §4.1)
func TestT35_StaleNodeOrder(t *testing.T) {
	e := clusterEngine(t)
	versions := map[uint16][]uint64{
		10001: {1, 2, 3},
		10002: {1, 2, 5},
		10003: {1, 2, 3},
		10004: {1, 2, 5, 7},
		10005: {},
		10006: {1},
	}
	for port := uint16(10001); port <= 10006; port++ {
		ns := addNode(t, e, id(port))
		for _, v := range versions[port] {
			setVersion(t, ns, fmt.Sprintf("k%d", v), "", v)
		}
	}
	floors := digestOf([3]uint64{10001, 0, 1}, [3]uint64{10002, 0, 2}, [3]uint64{10003, 0, 7}, [3]uint64{10004, 0, 1})
	d := e.deltaFor(t0, floors, unbounded)
	checkDelta(t, d, unbounded)
	if diff := cmp.Diff([]uint16{10006, 10004, 10001, 10002}, nodeOrder(d)); diff != "" {
		t.Errorf("node order mismatch (-want +got):\n%s", diff)
	}
}

// Nodes of equal priority are shuffled with the engine's RNG: the same seed
// gives the same order, different seeds give different orders.
func TestStaleNodeBucketsAreShuffled(t *testing.T) {
	orders := map[string]bool{}
	for seed := range uint64(40) {
		cfg := forTest(9999)
		var first string
		for range 2 {
			e, err := NewEngine(cfg, rand.New(rand.NewPCG(seed, seed)), nil)
			if err != nil {
				t.Fatal(err)
			}
			for port := uint16(10001); port <= 10004; port++ {
				setVersion(t, addNode(t, e, id(port)), "k", "v", 1)
			}
			order := fmt.Sprint(nodeOrder(e.deltaFor(t0, nil, unbounded)))
			if first != "" && order != first {
				t.Fatalf("seed %d: orders %s and %s differ", seed, first, order)
			}
			first = order
		}
		orders[first] = true
	}
	if len(orders) < 5 {
		t.Errorf("only %d distinct orders of 4 equal nodes over 40 seeds: %v", len(orders), orders)
	}
}

// T42 test_cluster_state_compute_digest
func TestT42_ComputeDigest(t *testing.T) {
	e := clusterEngine(t)
	addNode(t, e, id(10001)).set("key_a", "")
	n2 := addNode(t, e, id(10002))
	n2.lastGCVersion = 10
	n2.set("key_a", "")
	n2.set("key_b", "")
	want := Digest{
		{ID: id(10001), NodeDigest: NodeDigest{MaxVersion: 1}},
		{ID: id(10002), NodeDigest: NodeDigest{LastGCVersion: 10, MaxVersion: 2}},
		{ID: id(9999), NodeDigest: NodeDigest{Heartbeat: 1}}, // self, heartbeat 1 from NewEngine
	}
	// Protocol v1: CreateSyn summarizes buckets of the ring; the whole
	// explicit view (upstream's digest) is what streams carry.
	if diff := cmp.Diff(want, e.digest(t0), cmpOpts); diff != "" {
		t.Errorf("digest mismatch (-want +got):\n%s", diff)
	}
}

// T44 test_cluster_state_apply_delta (the last row of upstream's delta-application table)
func TestT44_ClusterApplyDelta(t *testing.T) {
	cfg := forTest(9999)
	calls := 0
	cfg.CatchupCallback = func() { calls++ }
	e := newEngine(t, cfg)
	n1 := addNode(t, e, id(10001))
	setVersion(t, n1, "key_a", "1", 1)
	setVersion(t, n1, "key_b", "3", 3)
	setVersion(t, addNode(t, e, id(10002)), "key_c", "3", 1)
	e.applyDelta(t0, &Delta{Nodes: []NodeDelta{
		{ID: id(10001), KeyValues: []KeyValueMutation{kv("key_b", "2", 2, StatusSet), kv("key_a", "4", 4, StatusSet)}, MaxVersion: 4},
		{ID: id(10002), LastGCVersion: 3, KeyValues: []KeyValueMutation{kv("key_d", "4", 4, StatusSet)}, MaxVersion: 4},
		// Protocol v1: digests no longer list every node, so a delta
		// from version 0 creates the node it brings (upstream ignores it);
		// one from a later version cannot apply to nothing and is ignored.
		{ID: id(10003), KeyValues: []KeyValueMutation{kv("unknown", "node", 1, StatusSet)}, MaxVersion: 1},
		{ID: id(10004), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("unknown", "node", 2, StatusSet)}, MaxVersion: 2},
	}})
	if diff := cmp.Diff(map[string]VersionedValue{"key_a": vv("4", 4, StatusSet), "key_b": vv("3", 3, StatusSet)}, entries(e.node(id(10001)))); diff != "" {
		t.Errorf("node1 mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]VersionedValue{"key_d": vv("4", 4, StatusSet)}, entries(e.node(id(10002)))); diff != "" {
		t.Errorf("node2 mismatch (-want +got):\n%s", diff)
	}
	if ns, ok := e.NodeState(id(10003)); !ok || kvs(ns)["unknown"] != "node" {
		t.Error("a delta from version 0 did not create its node")
	}
	if _, ok := e.NodeState(id(10004)); ok {
		t.Error("a delta from version 1 created a node")
	}
	if calls != 1 || e.Stats().NodeResets != 1 {
		t.Errorf("catch-up callback called %d times, %d resets; want 1 and 1", calls, e.Stats().NodeResets)
	}
}

// Malformed node deltas built without the wire decoder are rejected, not
// applied (and do not trip the invariant panics).
func TestApplyDeltaRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		nd   NodeDelta
	}{
		{name: "version 0", nd: NodeDelta{KeyValues: []KeyValueMutation{kv("a", "v", 0, StatusSet)}, MaxVersion: 3}},
		{name: "version above max", nd: NodeDelta{KeyValues: []KeyValueMutation{kv("a", "v", 5, StatusSet)}, MaxVersion: 3}},
		{name: "invalid status", nd: NodeDelta{KeyValues: []KeyValueMutation{kv("a", "v", 1, Status(9))}, MaxVersion: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := clusterEngine(t)
			addNode(t, e, id(10001))
			tt.nd.ID = id(10001)
			e.applyDelta(t0, &Delta{Nodes: []NodeDelta{tt.nd}})
			if ns := e.node(id(10001)); ns.MaxVersion() != 0 || len(entries(ns)) != 0 {
				t.Errorf("malformed delta applied: %v", entries(ns))
			}
			if e.Stats().NodeDeltasRejected != 1 {
				t.Errorf("NodeDeltasRejected = %d, want 1", e.Stats().NodeDeltasRejected)
			}
		})
	}
}

// deltaFixture is upstream's test_cluster_state(): node1 {key_a=1@1,
// key_b=2@2}; node2 {key_a@1, key_b@2, key_c=3@3, key_d deleted @5}.
func deltaFixture(tb testing.TB) *Engine {
	tb.Helper()
	e := clusterEngine(tb)
	n1 := addNode(tb, e, id(10001))
	n1.set("key_a", "1")
	n1.set("key_b", "2")
	n2 := addNode(tb, e, id(10002))
	n2.set("key_a", "1")
	n2.set("key_b", "2")
	n2.set("key_c", "3")
	n2.set("key_d", "4")
	n2.delete(t0, "key_d")
	return e
}

// checkBudgets checks every budget up to 200 bytes (what upstream's
// T45–T47 meant to check): the delta fits and round-trips; each node delta's key-values are
// a prefix of that node's part of full (so a receiver can apply a cut-short
// node delta); nodes keep their priority order; the first node's share only
// grows with the budget; 200 bytes hold everything.
//
// Upstream stops at the first op that does not fit, so its deltas are
// prefixes of full. The Go engine skips a node whose next entry does not fit
// and goes on with smaller news of the next nodes (docs/PROTOCOL.md §4.2), so a delta
// can hold a later node's key-values without an earlier node's: the prefix
// property holds per node, not globally.
func checkBudgets(tb testing.TB, e *Engine, digest Digest, full []string) {
	tb.Helper()
	perNode := func(kvs []string) map[string][]string {
		m := map[string][]string{}
		var order []string
		for _, s := range kvs {
			port := strings.SplitN(s, ":", 2)[0]
			if _, ok := m[port]; !ok {
				order = append(order, port)
			}
			m[port] = append(m[port], s)
		}
		m[""] = order
		return m
	}
	want := perNode(full)
	firstNode := want[""][0]
	prevFirst := 0
	var got []string
	for budget := 1; budget <= 200; budget++ {
		d := e.deltaFor(t0, digest, budget)
		checkDelta(tb, d, budget)
		got = deltaKVs(d)
		have := perNode(got)
		for _, port := range have[""] {
			if !isPrefix(have[port], want[port]) {
				tb.Fatalf("budget %d: node %s key-values %v are not a prefix of %v", budget, port, have[port], want[port])
			}
		}
		if !isSubsequence(have[""], want[""]) {
			tb.Fatalf("budget %d: node order %v does not follow the priority order %v", budget, have[""], want[""])
		}
		if n := len(have[firstNode]); n < prevFirst {
			tb.Fatalf("budget %d: first node has %d key-values, fewer than with a smaller budget", budget, n)
		} else {
			prevFirst = n
		}
	}
	if !slices.Equal(got, full) {
		tb.Fatalf("a 200-byte budget holds %v, want %v", got, full)
	}
}

// isSubsequence reports whether sub appears in s in order.
func isSubsequence(sub, s []string) bool {
	i := 0
	for _, x := range s {
		if i < len(sub) && sub[i] == x {
			i++
		}
	}
	return i == len(sub)
}

// T45 test_cluster_state_compute_delta_depth_first_single_node,
// T46 test_cluster_state_compute_delta_depth_first_chitchat (identical)
func TestT45_T46_ComputeDeltaDepthFirst(t *testing.T) {
	e := deltaFixture(t)
	digest := digestOf([3]uint64{10001, 0, 1}, [3]uint64{10002, 0, 2})
	want := []NodeDelta{
		{ID: id(10002), FromVersionExcluded: 2, KeyValues: []KeyValueMutation{kv("key_c", "3", 3, StatusSet), kv("key_d", "", 5, StatusDeleted)}, MaxVersion: 5},
		{ID: id(10001), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("key_b", "2", 2, StatusSet)}, MaxVersion: 2},
	}
	if diff := cmp.Diff(want, e.deltaFor(t0, digest, unbounded).Nodes, cmpOpts); diff != "" {
		t.Errorf("delta mismatch (-want +got):\n%s", diff)
	}
	checkBudgets(t, e, digest, []string{"10002:key_c@3", "10002:key_d@5", "10001:key_b@2"})
}

// T47 test_cluster_state_compute_delta_missing_node
func TestT47_ComputeDeltaMissingNode(t *testing.T) {
	e := deltaFixture(t)
	digest := digestOf([3]uint64{10002, 0, 3})
	want := []NodeDelta{
		{ID: id(10001), KeyValues: []KeyValueMutation{kv("key_a", "1", 1, StatusSet), kv("key_b", "2", 2, StatusSet)}, MaxVersion: 2},
		{ID: id(10002), FromVersionExcluded: 3, KeyValues: []KeyValueMutation{kv("key_d", "", 5, StatusDeleted)}, MaxVersion: 5},
	}
	if diff := cmp.Diff(want, e.deltaFor(t0, digest, unbounded).Nodes, cmpOpts); diff != "" {
		t.Errorf("delta mismatch (-want +got):\n%s", diff)
	}
	checkBudgets(t, e, digest, []string{"10001:key_a@1", "10001:key_b@2", "10002:key_d@5"})
}

// T48 test_cluster_state_compute_delta_should_ignore_dead_nodes
func TestT48_ComputeDeltaIgnoresScheduledForDeletion(t *testing.T) {
	e := deltaFixture(t)
	// node1 heart-beats three times (live); node2 never does (dead at t0).
	for i, at := range []time.Time{t0.Add(-2 * time.Second), t0.Add(-time.Second), t0} {
		e.reportHeartbeats(at, Digest{{ID: id(10001), NodeDigest: NodeDigest{Heartbeat: uint64(i + 1)}}})
	}
	e.UpdateLiveness(t0)
	if diff := cmp.Diff([]NodeID{id(9999), id(10001)}, e.LiveNodes(), cmpOpts); diff != "" {
		t.Fatalf("live nodes mismatch (-want +got):\n%s", diff)
	}
	// Scheduled for deletion strictly after half the 4 s grace period.
	if got := e.ScheduledForDeletionNodes(t0.Add(2 * time.Second)); len(got) != 0 {
		t.Errorf("scheduled at exactly G/2: %v", got)
	}
	now := t0.Add(2*time.Second + time.Nanosecond)
	if diff := cmp.Diff([]NodeID{id(10002)}, e.ScheduledForDeletionNodes(now), cmpOpts); diff != "" {
		t.Errorf("scheduled nodes mismatch (-want +got):\n%s", diff)
	}
	want := []NodeDelta{{ID: id(10001), KeyValues: []KeyValueMutation{kv("key_a", "1", 1, StatusSet), kv("key_b", "2", 2, StatusSet)}, MaxVersion: 2}}
	if diff := cmp.Diff(want, e.deltaFor(now, nil, unbounded).Nodes, cmpOpts); diff != "" {
		t.Errorf("delta mismatch (-want +got):\n%s", diff)
	}
	if _, ok := e.CreateSyn(now).Digest.Get(id(10002)); ok {
		t.Error("the digest lists a node scheduled for deletion")
	}
}

// T49 test_cluster_state_compute_delta_with_old_node_state_that_needs_reset
func TestT49_ComputeDeltaWithResetNeeded(t *testing.T) {
	e := clusterEngine(t)
	n1 := addNode(t, e, id(10001))
	n1.heartbeat = 10000
	n1.set("key_a", "1")
	n1.set("key_b", "2")
	setVersion(t, addNode(t, e, id(10002)), "key_c", "3", 2)
	digest := digestOf([3]uint64{10001, 0, 1})
	node2 := NodeDelta{ID: id(10002), KeyValues: []KeyValueMutation{kv("key_c", "3", 2, StatusSet)}, MaxVersion: 2}

	steps := []struct {
		name string
		at   time.Time
		act  func(now time.Time)
		want []NodeDelta
	}{
		{
			name: "initial",
			at:   t0,
			act:  func(time.Time) {},
			want: []NodeDelta{node2, {ID: id(10001), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("key_b", "2", 2, StatusSet)}, MaxVersion: 2}},
		},
		{
			name: "key_a deleted, not yet collected",
			at:   t0.Add(5 * time.Second),
			act: func(now time.Time) {
				n1.delete(t0, "key_a")
				e.GCKeys(now)
			},
			want: []NodeDelta{node2, {ID: id(10001), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("key_b", "2", 2, StatusSet), kv("key_a", "", 3, StatusDeleted)}, MaxVersion: 3}},
		},
		{
			name: "key_a collected: the peer must reset node1",
			at:   t0.Add(15 * time.Second),
			act:  func(now time.Time) { e.GCKeys(now) },
			want: []NodeDelta{node2, {ID: id(10001), LastGCVersion: 3, KeyValues: []KeyValueMutation{kv("key_b", "2", 2, StatusSet)}, MaxVersion: 2}},
		},
	}
	for _, s := range steps {
		s.act(s.at)
		d := e.deltaFor(s.at, digest, unbounded)
		checkDelta(t, d, unbounded)
		if diff := cmp.Diff(s.want, d.Nodes, cmpOpts); diff != "" {
			t.Errorf("%s: delta mismatch (-want +got):\n%s", s.name, diff)
		}
	}
}

// T59 test_cluster_state_apply_delta_last_gc_equal_max_does_not_reset
func TestT59_LastGCEqualMaxDoesNotReset(t *testing.T) {
	cfg := forTest(9999)
	calls := 0
	cfg.CatchupCallback = func() { calls++ }
	e := newEngine(t, cfg)
	setVersion(t, addNode(t, e, id(10001)), "key_a", "val_a", 20)
	e.applyDelta(t0, &Delta{Nodes: []NodeDelta{{ID: id(10001), LastGCVersion: 20, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 18, StatusSet)}, MaxVersion: 18}}})
	ns := e.node(id(10001))
	if calls != 0 || e.Stats().NodeResets != 0 {
		t.Errorf("reset reported (callback %d, resets %d)", calls, e.Stats().NodeResets)
	}
	if diff := cmp.Diff(map[string]VersionedValue{"key_a": vv("val_a", 20, StatusSet)}, entries(ns)); diff != "" || ns.MaxVersion() != 20 {
		t.Errorf("state changed: max %d (-want +got):\n%s", ns.MaxVersion(), diff)
	}
}

// docs/PROTOCOL.md §14: a key-value too large for the budget stalls neither its own
// node's earlier versions nor the other nodes (upstream stops the delta).
func TestLargeValueDoesNotStarveOtherNodes(t *testing.T) {
	e := clusterEngine(t)
	// Unknown nodes go smallest max version first: 10001 (one huge value),
	// then 10002, then 10003.
	setVersion(t, addNode(t, e, id(10001)), "big", strings.Repeat("x", 2000), 1)
	n2 := addNode(t, e, id(10002))
	setVersion(t, n2, "a", "1", 1)
	setVersion(t, n2, "b", "2", 2)
	// 10003: a small key-value then a huge one, then nothing fits.
	n3 := addNode(t, e, id(10003))
	setVersion(t, n3, "c", "3", 1)
	setVersion(t, n3, "big", strings.Repeat("y", 2000), 2)
	setVersion(t, n3, "d", "4", 3)
	d := e.deltaFor(t0, nil, 500)
	checkDelta(t, d, 500)
	if diff := cmp.Diff([]string{"10002:a@1", "10002:b@2", "10003:c@1"}, deltaKVs(d)); diff != "" {
		t.Errorf("key-values mismatch (-want +got):\n%s", diff)
	}
}

// A node whose newer entries were all collected gets a max-version-only node
// delta, which the receiver applies.
func TestSetMaxVersionCatchUp(t *testing.T) {
	sender := clusterEngine(t)
	ns := addNode(t, sender, id(10001))
	ns.set("a", "1")
	ns.delete(t0, "a")
	ns.gcKeys(t0.Add(time.Hour), time.Second)
	if ns.monotonic() != [2]uint64{2, 2} || len(entries(ns)) != 0 {
		t.Fatalf("sender state %v with %d entries, want (2, 2) and none", ns.monotonic(), len(entries(ns)))
	}
	d := sender.deltaFor(t0, digestOf([3]uint64{10001, 2, 1}), unbounded)
	want := []NodeDelta{{ID: id(10001), LastGCVersion: 2, FromVersionExcluded: 1, MaxVersion: 2}}
	if diff := cmp.Diff(want, d.Nodes, cmpOpts); diff != "" {
		t.Fatalf("delta mismatch (-want +got):\n%s", diff)
	}
	receiver := clusterEngine(t)
	rs := addNode(t, receiver, id(10001))
	rs.maxVersion, rs.lastGCVersion = 1, 2
	got := decodeDeltaBytes(t, d.enc)
	receiver.applyDelta(t0, &got)
	if rs.monotonic() != [2]uint64{2, 2} {
		t.Errorf("receiver state %v, want (2, 2)", rs.monotonic())
	}
	if slices.ContainsFunc(d.Nodes, func(nd NodeDelta) bool { return nd.ID == id(9999) }) {
		t.Error("self without news in the delta")
	}
}
