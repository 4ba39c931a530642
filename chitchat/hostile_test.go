package chitchat

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Forged datagrams against honest engines (issue 11). Each test names the
// attack it reproduces; every one of them failed before the fix it guards.

// trio returns three engines that have gossiped until each sees the others
// live, and the time reached.
func trio(t *testing.T) (a, b, c *Engine, now time.Time) {
	t.Helper()
	a, b, c = newEngine(t, forTest(1)), newEngine(t, forTest(2)), newEngine(t, forTest(3))
	now = t0
	for range 20 {
		now = now.Add(time.Second)
		for _, e := range []*Engine{a, b, c} {
			e.Tick(now)
		}
		handshake(t, now, a, b)
		handshake(t, now, b, c)
		handshake(t, now, c, a)
	}
	for _, e := range []*Engine{a, b, c} {
		if got := len(e.LiveNodes()); got != 3 {
			t.Fatalf("%v sees %d live nodes after warm-up, want 3", e.Self(), got)
		}
	}
	return a, b, c, now
}

// gossipRounds runs n rounds of full handshakes among the engines.
func gossipRounds(t *testing.T, now time.Time, n int, es ...*Engine) time.Time {
	t.Helper()
	for range n {
		now = now.Add(time.Second)
		for _, e := range es {
			e.Tick(now)
		}
		for i, a := range es {
			handshake(t, now, a, es[(i+1)%len(es)])
		}
	}
	return now
}

// forge sends e a Syn with the given digest, from nobody in particular.
func forge(t *testing.T, now time.Time, e *Engine, d Digest) {
	t.Helper()
	e.Process(now, wire(t, &Syn{ClusterID: "default-cluster", Digest: d.normalize()}))
}

// forgeDelta sends e an Ack carrying nodes.
func forgeDelta(t *testing.T, now time.Time, e *Engine, nodes ...NodeDelta) {
	t.Helper()
	e.Process(now, wire(t, &Ack{Delta: buildDelta(nodes)}))
}

func isLive(e *Engine, id NodeID) bool {
	for _, l := range e.LiveNodes() {
		if l == id {
			return true
		}
	}
	return false
}

// Issue 11, item 1: a heartbeat above 2^62 for a known node used to be
// taken: its real heartbeats were never "newer" again, so it died and the
// GC history kept it dead for good.
func TestHugeHeartbeatForKnownNodeIsRefused(t *testing.T) {
	a, b, c, now := trio(t)
	forge(t, now, c, Digest{{ID: b.Self(), NodeDigest: NodeDigest{Heartbeat: 1 << 63}}})
	if got := c.Stats().ClaimsRefused; got != 1 {
		t.Errorf("ClaimsRefused = %d, want 1", got)
	}
	if ns, _ := c.NodeState(b.Self()); ns.Heartbeat() > maxSafeVersion {
		t.Fatalf("c took heartbeat %d for b", ns.Heartbeat())
	}
	gossipRounds(t, now, 30, a, b, c)
	if !isLive(c, b.Self()) {
		t.Error("b is not live at c after the forgery")
	}
}

// Issue 11, item 1, within the bounds: a forged heartbeat far above the real
// one spreads like any heartbeat; the owner sees the claim and moves past
// it, so it stays live everywhere.
func TestForgedHeartbeatIsRefutedByTheOwner(t *testing.T) {
	a, b, c, now := trio(t)
	forged := b.selfState().heartbeat + 1_000_000
	forge(t, now, c, Digest{{ID: b.Self(), NodeDigest: NodeDigest{Heartbeat: forged}}})
	now = gossipRounds(t, now, 30, a, b, c)
	if b.Stats().Refutations == 0 {
		t.Error("b never refuted the forged heartbeat")
	}
	if hb := b.selfState().heartbeat; hb <= forged {
		t.Errorf("b's heartbeat %d is still below the forged %d", hb, forged)
	}
	for _, e := range []*Engine{a, c} {
		if !isLive(e, b.Self()) {
			t.Errorf("b is not live at %v after the refutation", e.Self())
		}
		if ns, _ := e.NodeState(b.Self()); ns.Heartbeat() <= forged {
			t.Errorf("%v's view of b's heartbeat is %d, not past the forged %d", e.Self(), ns.Heartbeat(), forged)
		}
	}
	_ = now
}

// Issue 11, item 2: invented nodes with long names used to enter the
// victim's digest at once; two Syns made it too large to send or answer.
// They are now neither advertised (they never heart-beat) nor held beyond
// Limits.MaxNodeNameSize.
func TestInventedNodesDoNotFillTheDigest(t *testing.T) {
	_, b, _, now := trio(t)
	before := len(b.CreateSyn(now).Digest)
	for round := range 2 {
		var d Digest
		for i := range 240 {
			name := fmt.Sprintf("%s-%d-%d", strings.Repeat("x", 230), round, i)
			d = append(d, DigestEntry{ID: NodeID{Name: name, Addr: id(uint16(20000 + i)).Addr}, NodeDigest: NodeDigest{Heartbeat: 1}})
		}
		forge(t, now, b, d)
	}
	if got := len(b.CreateSyn(now).Digest); got != before {
		t.Errorf("b's digest has %d entries after the flood, want %d", got, before)
	}
	reply := b.Process(now, &Syn{ClusterID: "default-cluster"})
	if _, ok := reply.(*SynAck); !ok {
		t.Errorf("b answers %T, want a SynAck", reply)
	}
	long := NodeID{Name: strings.Repeat("y", 257), Addr: id(30000).Addr}
	forge(t, now, b, Digest{{ID: long, NodeDigest: NodeDigest{Heartbeat: 1}}})
	if _, ok := b.NodeState(long); ok {
		t.Error("b holds a node whose name exceeds Limits.MaxNodeNameSize")
	}
}

// Issue 11, item 3: a forged reset (from 0, GC version far ahead) used to
// freeze every peer's view of the node: honest deltas were rejected for
// ever. The owner sees the claim, moves its versions past it, and every
// holder resets to the real state.
func TestForgedResetIsRefutedByTheOwner(t *testing.T) {
	a, b, c, now := trio(t)
	if err := b.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	now = gossipRounds(t, now, 3, a, b, c)
	forgeDelta(t, now, c, NodeDelta{ID: b.Self(), LastGCVersion: 1 << 50, MaxVersion: 1<<50 + 1,
		KeyValues: []KeyValueMutation{kv("role", "forged", 1<<50+1, StatusSet)}})
	if v, _ := c.node(b.Self()).Get("role"); v != "forged" {
		t.Fatalf("the forged reset was not applied at c (role=%q): the test no longer attacks anything", v)
	}
	now = gossipRounds(t, now, 10, a, b, c)
	if err := b.Set("after", "yes"); err != nil {
		t.Fatal(err)
	}
	gossipRounds(t, now, 10, a, b, c)
	if b.Stats().Refutations == 0 {
		t.Error("b never refuted the forged reset")
	}
	for _, e := range []*Engine{a, c} {
		got := kvs(e.node(b.Self()))
		if got["role"] != "indexer" || got["after"] != "yes" {
			t.Errorf("%v's view of b = %v, want role=indexer after=yes", e.Self(), got)
		}
	}
}

// Issue 11, item 4: the same forged reset sent to the owner used to wipe
// its own state. Deltas about the self node are never applied.
func TestDeltaAboutSelfIsNeverApplied(t *testing.T) {
	_, b, _, now := trio(t)
	if err := b.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	hb := b.selfState().heartbeat
	forgeDelta(t, now, b, NodeDelta{ID: b.Self(), LastGCVersion: 1 << 40, MaxVersion: 1 << 40})
	if v, ok := b.Get("role"); !ok || v != "indexer" {
		t.Errorf("b's own key after the forged reset: %q, %v; want indexer", v, ok)
	}
	if got := b.selfState().heartbeat; got < hb {
		t.Errorf("b's heartbeat went back from %d to %d", hb, got)
	}
	st := b.Stats()
	if st.SelfDeltasIgnored != 1 || st.Refutations != 1 {
		t.Errorf("SelfDeltasIgnored = %d, Refutations = %d; want 1 and 1", st.SelfDeltasIgnored, st.Refutations)
	}
	if b.selfState().maxVersion <= 1<<40 {
		t.Errorf("b's max version %d did not move past the claim", b.selfState().maxVersion)
	}
}

// Issue 11, item 5: withinLimits used to count a compatible delta with
// from 0 and a larger GC version as a reset: ten such deltas of 4 keys each
// gave 40 keys under a limit of 4.
func TestMaxKeysPerNodeHoldsAcrossDeltas(t *testing.T) {
	cfg := forTest(1)
	cfg.Limits.MaxKeysPerNode = 4
	e := newEngine(t, cfg)
	victim := id(2)
	addNode(t, e, victim)
	for i := range 10 {
		base := uint64(4 * i)
		var kvs []KeyValueMutation
		for k := range 4 {
			kvs = append(kvs, kv(fmt.Sprintf("k%d", 4*i+k), "v", base+uint64(k)+1, StatusSet))
		}
		// From 0 with a GC version at our max version: compatible, applied
		// on top of the keys already held.
		forgeDelta(t, t0, e, NodeDelta{ID: victim, LastGCVersion: base, MaxVersion: base + 4, KeyValues: kvs})
	}
	if n := e.node(victim).kvs.len(); n > 4 {
		t.Errorf("victim holds %d keys under a limit of 4", n)
	}
	if e.Stats().NodeDeltasRefused == 0 {
		t.Error("no delta was refused")
	}
}

// Issue 11, item 7: Engine.Process with an unsorted digest (the public API
// does not go through the decoder) used to duplicate node states.
func TestProcessNormalizesAnUnsortedDigest(t *testing.T) {
	e := newEngine(t, forTest(1))
	e.Process(t0, &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: id(3), NodeDigest: NodeDigest{Heartbeat: 1}}}})
	// The merge walk only moves forward: node 3, already held and listed
	// after node 5, used to be created a second time.
	d := Digest{
		{ID: id(5), NodeDigest: NodeDigest{Heartbeat: 1}},
		{ID: id(3), NodeDigest: NodeDigest{Heartbeat: 2}},
		{ID: id(5), NodeDigest: NodeDigest{Heartbeat: 2}},
		{ID: id(4), NodeDigest: NodeDigest{Heartbeat: 1}},
	}
	e.Process(t0, &Syn{ClusterID: "default-cluster", Digest: d})
	ids := e.NodeIDs()
	seen := map[NodeID]int{}
	for _, id := range ids {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%v held %d times", id, n)
		}
	}
	if len(ids) != 4 {
		t.Errorf("NodeIDs = %v, want self and nodes 3, 4, 5", ids)
	}
	if d[0].ID != id(5) {
		t.Error("Process reordered the caller's digest")
	}
}

// A claim that cannot be outbid inside the version space: the node takes a
// new generation with the same keys, and its old identity never comes back
// here.
func TestUnrefutableClaimReincarnates(t *testing.T) {
	a, b, c, now := trio(t)
	if err := b.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	old := b.Self()
	forge(t, now, b, Digest{{ID: old, NodeDigest: NodeDigest{Heartbeat: maxSafeVersion}}})
	if b.Stats().Reincarnations != 1 {
		t.Fatalf("Reincarnations = %d, want 1", b.Stats().Reincarnations)
	}
	if b.Self() == old || b.Self().Generation <= old.Generation || b.Self().Name != old.Name {
		t.Fatalf("self after reincarnation = %v, want %v with a larger generation", b.Self(), old)
	}
	if v, _ := b.Get("role"); v != "indexer" {
		t.Errorf("role after reincarnation = %q, want indexer", v)
	}
	gossipRounds(t, now, 10, a, b, c)
	if _, ok := b.NodeState(old); ok {
		t.Error("b holds its old identity as a peer")
	}
	for _, e := range []*Engine{a, c} {
		if !isLive(e, b.Self()) {
			t.Errorf("b's new identity is not live at %v", e.Self())
		}
		if v, _ := e.node(b.Self()).Get("role"); v != "indexer" {
			t.Errorf("%v's view of b's role = %q", e.Self(), v)
		}
	}
}

// ResetNodeStateIfUpdate enforces the same bounds as gossip.
func TestResetNodeStateRefusesOutOfBounds(t *testing.T) {
	e := newEngine(t, forTest(1))
	ok := map[string]VersionedValue{"k": {Value: "v", Version: 1}}
	tests := []struct {
		name string
		id   NodeID
		kvs  map[string]VersionedValue
		max  uint64
		gc   uint64
	}{
		{"self", e.Self(), ok, 1, 0},
		{"long name", NodeID{Name: strings.Repeat("n", 300), Addr: id(2).Addr}, ok, 1, 0},
		{"huge max version", id(2), ok, 1 << 63, 0},
		{"huge gc version", id(2), ok, 1, 1 << 63},
		{"zero key version", id(2), map[string]VersionedValue{"k": {Value: "v"}}, 1, 0},
		{"huge key version", id(2), map[string]VersionedValue{"k": {Value: "v", Version: 1 << 63}}, 1, 0},
		{"bad status", id(2), map[string]VersionedValue{"k": {Value: "v", Version: 1, Status: 7}}, 1, 0},
		{"long key", id(2), map[string]VersionedValue{strings.Repeat("k", 5000): {Value: "v", Version: 1}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.ResetNodeStateIfUpdate(t0, tt.id, tt.kvs, tt.max, tt.gc); err == nil {
				t.Error("accepted")
			}
		})
	}
	if len(e.NodeIDs()) != 1 {
		t.Errorf("nodes after refused resets: %v", e.NodeIDs())
	}
}
