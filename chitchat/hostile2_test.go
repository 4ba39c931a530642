package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Attacks of the second hostile review that the core withstands: each
// test fails if the defence it names is removed.

// A forged echo claiming more than the owner's max version is refuted like
// any claim (docs/design/scale.md §6), and the owner keeps every key.
func TestHostileEchoClaimAboveMaxIsRefuted(t *testing.T) {
	a, b, c, now := trio(t)
	if err := a.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	now = gossipRounds(t, now, 2, a, b, c)
	max0 := a.selfState().maxVersion
	a.Step(now, Inbound{From: attacker}, wire(t, &SynAck{Echo: &Echo{MaxVersion: max0 + 5, LastGCVersion: max0 + 5}}))
	if got := a.Stats().Refutations; got != 1 {
		t.Errorf("refutations after a forged echo above our max version: %d, want 1", got)
	}
	if v, _ := a.Get("role"); v != "indexer" {
		t.Errorf("a's role = %q after the refutation, want indexer", v)
	}
	gossipRounds(t, now, 5, a, b, c)
	for _, e := range []*Engine{b, c} {
		if v, _ := e.node(a.Self()).Get("role"); v != "indexer" {
			t.Errorf("%v's view of a: role=%q, want indexer", e.Self(), v)
		}
	}
}

// An honest echo in flight when the owner writes (the peer's view lags by
// a version) never counts as a forgery: only equal (max, GC) versions are
// compared.
func TestHostileLaggingEchoIsNotAMismatch(t *testing.T) {
	a, b, c, now := trio(t)
	if err := a.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	now = gossipRounds(t, now, 2, a, b, c)
	syn := a.CreateSyn(now)
	synAck := b.Step(now, Inbound{From: a.Self().Addr}, wire(t, syn)).Reply
	if sa, ok := synAck.(*SynAck); !ok || sa.Echo == nil {
		t.Fatalf("b's answer carries no echo: the test proves nothing (%#v)", synAck)
	}
	if err := a.Set("late", "write"); err != nil {
		t.Fatal(err)
	}
	a.Step(now, Inbound{From: b.Self().Addr}, wire(t, synAck))
	gossipRounds(t, now, 3, a, b, c)
	if st := a.Stats(); st.ForgedContent != 0 || st.Refutations != 0 {
		t.Errorf("a lagging honest echo: forged content %d, refutations %d, want 0", st.ForgedContent, st.Refutations)
	}
}

// A death notice about a node whose heartbeats the receiver sees rise
// (phi low) is ignored: a forger cannot kill a healthy node with notices,
// however many it sends.
func TestHostileForgedDeathNoticesDoNotKillHealthyNode(t *testing.T) {
	a, b, c, now := trio(t)
	for r := range 10 {
		p := &Push{ClusterID: "default-cluster", Range: &RingRange{After: uint64(r), Upto: uint64(r)},
			Notices: []Notice{{Kind: NoticeDead, ID: c.Self(), Heartbeat: 1 << 40}}}
		b.Step(now, Inbound{From: attacker}, wire(t, p))
		now = gossipRounds(t, now, 1, a, b, c)
		if !isLive(b, c.Self()) {
			t.Fatalf("round %d: c is dead at b after forged death notices (notices applied: %d)", r, b.push.stats.NoticesDead)
		}
	}
}

// A replayed push (byte for byte) is applied and forwarded once.
func TestHostileReplayedPushIsForwardedOnce(t *testing.T) {
	es, now := pushCluster(t, 5)
	p := &Push{ClusterID: "default-cluster", Range: &RingRange{After: 7, Upto: 7},
		Notices: []Notice{{Kind: NoticeAlive, ID: es[1].Self(), Heartbeat: 1}}}
	// From a member's address: a plaintext push from elsewhere is never
	// forwarded (TestHostileForgedPushIsForwardedToTheWholeRing).
	from := es[2].Self().Addr
	first := len(es[0].Step(now, Inbound{From: from}, wire(t, p)).Pushes)
	if first == 0 {
		t.Fatal("the first copy was not forwarded: the test proves nothing")
	}
	for range 5 {
		if got := len(es[0].Step(now, Inbound{From: from}, wire(t, p)).Pushes); got != 0 {
			t.Fatalf("a replayed push was forwarded again to %d nodes", got)
		}
	}
}

// A forged over-count delta about a peer that the receiver holds nothing
// of (max version 0) changes nothing and does not count as a forgotten
// view: forgetView needs a view to forget.
func TestHostileOverCountOnEmptyViewForgetsNothing(t *testing.T) {
	cfg := forTest(2)
	cfg.Limits.MaxKeysPerNode = 8
	b := newEngine(t, cfg)
	owner := NodeID{Name: "owner", Addr: netip.AddrPortFrom(localhost, 77)}
	var ops []KeyValueMutation
	for v := range uint64(9) {
		ops = append(ops, kv(fmt.Sprintf("k%d", v), "", v+1, StatusSet))
	}
	b.Step(t0, Inbound{From: attacker}, wire(t, &Ack{Delta: buildDelta([]NodeDelta{{ID: owner, MaxVersion: 9, KeyValues: ops}})}))
	if st := b.Stats(); st.ViewsForgotten != 0 || st.NodeDeltasRefused != 1 {
		t.Errorf("views forgotten %d (want 0), deltas refused %d (want 1)", st.ViewsForgotten, st.NodeDeltasRefused)
	}
	if ns, ok := b.lookup(owner); ok && ns.kvs.len() != 0 {
		t.Errorf("b holds %d keys of the owner, want 0", ns.kvs.len())
	}
}

// hostileBenchEngine returns an engine holding n evidenced peers.
func hostileBenchEngine(b *testing.B, n int) *Engine {
	b.Helper()
	e := newEngine(b, forTest(1))
	for i := range n {
		ns := addNode(b, e, NodeID{Name: fmt.Sprintf("peer-%05d", i), Addr: netip.AddrPortFrom(localhost, uint16(20000+i))})
		ns.heartbeat, ns.evidenced = 5, true
	}
	return e
}

// CPU per hostile datagram (docs/design/scale.md §8 bounds bytes, not
// work): a plaintext Syn from an unknown source with the widest coverage
// the decoder accepts, and one with a digest of many unknown ids.
func BenchmarkHostileSyn(b *testing.B) {
	for _, n := range []int{100, 2000} {
		e := hostileBenchEngine(b, n)
		wide := &Syn{ClusterID: "default-cluster", Cover: &Coverage{Bits: maxBits, Count: 1 << maxBits}}
		var d Digest
		for i := range 40 {
			d = append(d, DigestEntry{ID: NodeID{Name: fmt.Sprintf("ghost-%03d", i), Addr: netip.AddrPortFrom(localhost, uint16(40000+i))}, NodeDigest: NodeDigest{Heartbeat: 1, MaxVersion: 1}})
		}
		many := &Syn{ClusterID: "default-cluster", Digest: d.normalize(), Cover: &Coverage{Bits: 0, Count: 1}}
		for _, tc := range []struct {
			name string
			m    Message
		}{{"wide-cover", wide}, {"unknown-ids", many}} {
			enc := EncodeMessage(tc.m)
			b.Run(fmt.Sprintf("%s/nodes=%d", tc.name, n), func(b *testing.B) {
				now := t0
				for b.Loop() {
					m, err := DecodeMessage(enc)
					if err != nil {
						b.Fatal(err)
					}
					now = now.Add(time.Millisecond)
					e.Step(now, Inbound{From: attacker, Size: len(enc)}, m)
				}
				b.ReportMetric(float64(len(enc)), "bytes/datagram")
			})
		}
	}
}
