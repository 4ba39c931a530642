package chitchat

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Failing reproductions of the second hostile review (issue 11, after the
// SynAck echo landed). Each states the invariant it breaks.

// forgedEchoWithoutRefutation returns the Echo a forger sent so that the
// owner collected up to its own max version without refuting (when echoes
// made owners catch up on a peer's GC point): GC version = max version,
// and the fingerprint of the owner's Set entries (every key and value of
// the owner is public: the forger got them by gossip).
func forgedEchoWithoutRefutation(e *Engine) *Echo {
	self := e.selfState()
	var fp uint64
	for k, v := range self.kvs.all() {
		if v.Status == StatusSet {
			fp ^= kvHash(k, v)
		}
	}
	return &Echo{MaxVersion: self.maxVersion, LastGCVersion: self.maxVersion, Fingerprint: fp}
}

// Invariant: a forged datagram never makes an honest node lose its keys
// (issue 11). A key set with SetWithTTL stays readable on its owner until
// MarkedForDeletionGracePeriod after it was written.
//
// checkEcho once trusted the echo's LastGCVersion: any SynAck (unsolicited,
// from any source, no Syn of ours outstanding) whose echo said the peer
// collected up to our max version made us collect up to it: every TTL'd
// key of ours was dropped at once, and the raised GC version reset every
// peer's view of us, so the keys vanished cluster-wide. Echoes no longer
// move anyone's GC point (fingerprints cover Set entries only).
func TestHostileForgedEchoCollectsOwnerTTLKeys(t *testing.T) {
	a, b, c, now := trio(t)
	if err := a.SetWithTTL(now, "lease", "held"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	now = gossipRounds(t, now, 2, a, b, c)
	refutations := a.Stats().Refutations
	a.Step(now, Inbound{From: c.Self().Addr}, wire(t, &SynAck{Echo: forgedEchoWithoutRefutation(a)}))
	if _, ok := a.Get("lease"); !ok {
		t.Errorf("a lost its TTL'd key 'lease' to one forged SynAck echo (last GC version now %d, max %d; refutations %d → %d), 1 s after it was written with a grace period of %v",
			a.selfState().lastGCVersion, a.selfState().maxVersion, refutations, a.Stats().Refutations, a.Config().MarkedForDeletionGracePeriod)
	}
	now = gossipRounds(t, now, 3, a, b, c)
	for _, e := range []*Engine{b, c} {
		if _, ok := e.node(a.Self()).Get("lease"); !ok {
			t.Errorf("%v's view of a lost 'lease' after the forged echo", e.Self())
		}
	}
}

// Invariant: as above, through the other side of the echo. A plaintext Syn
// whose marked sender is a and whose UDP source is spoofed to a's address
// makes the responder (echoFor) collect its view of a up to the GC version
// a's "own entry" claims, as long as it is within the view's max version:
// a's TTL'd keys vanish from b's view, b's echo then makes a collect them
// too, and no refutation is counted anywhere (the forged claim never
// exceeds a's max version).
func TestHostileSpoofedSynCollectsTTLKeysInViews(t *testing.T) {
	a, b, c, now := trio(t)
	if err := a.SetWithTTL(now, "lease", "held"); err != nil {
		t.Fatal(err)
	}
	now = gossipRounds(t, now, 2, a, b, c)
	self := a.selfState()
	spoofed := &Syn{ClusterID: "default-cluster", Sender: a.Self(), Digest: Digest{{ID: a.Self(),
		NodeDigest: NodeDigest{Heartbeat: self.heartbeat, LastGCVersion: self.maxVersion, MaxVersion: self.maxVersion}}}}
	b.Step(now, Inbound{From: a.Self().Addr}, wire(t, spoofed)) // the SynAck goes to a (or is lost)
	if _, ok := b.node(a.Self()).Get("lease"); !ok {
		t.Errorf("b's view of a lost 'lease' to one spoofed Syn (view: last GC version %d, max %d)",
			b.node(a.Self()).lastGCVersion, b.node(a.Self()).maxVersion)
	}
	gossipRounds(t, now, 3, a, b, c)
	if _, ok := a.Get("lease"); !ok {
		t.Errorf("a lost its own 'lease' after honest gossip with b (refutations at a: %d)", a.Stats().Refutations)
	}
}

// Invariant: a forged datagram cannot keep an honest node's view of a peer
// empty (issue 11: never wipe). forgetView empties a view when a delta on
// top of it would exceed MaxKeysPerNode, and withinLimits counts a key
// repeated within the delta each time: one compatible delta about a (from
// version 0, no knowledge needed but a's id) with MaxKeysPerNode+1 ops of
// the same one-byte key makes b forget every key of a. Sent once per
// round, while a's state needs more than one datagram to be taken afresh,
// b never holds a's keys again. (With the default limit of 100,000 the
// forged delta needs about 600 KB: one stream message, well within
// MaxStreamMessageSize.)
func TestHostileForgedOverCountWipesView(t *testing.T) {
	cfg := func(port uint16) Config {
		c := forTest(port)
		c.Limits.MaxKeysPerNode = 64
		c.MaxDatagramSize = 1400
		return c
	}
	a, b := newEngine(t, cfg(1)), newEngine(t, cfg(2))
	value := strings.Repeat("v", 200)
	for k := range 40 {
		if err := a.Set(fmt.Sprintf("k%02d", k), value); err != nil {
			t.Fatal(err)
		}
	}
	now := directRounds(t, t0, 40, a, b)
	if got := len(kvs(b.node(a.Self()))); got != 40 {
		t.Fatalf("b holds %d keys of a after warm-up, want 40", got)
	}
	var ops []KeyValueMutation
	for v := range uint64(b.limits.MaxKeysPerNode + 1) {
		ops = append(ops, kv("x", "", v+1, StatusSet))
	}
	minHeld := 40
	for range 10 {
		b.Step(now, Inbound{From: attacker}, wire(t, &Ack{Delta: buildDelta([]NodeDelta{{ID: a.Self(), MaxVersion: uint64(len(ops)), KeyValues: ops}})}))
		now = directRounds(t, now, 1, a, b)
		minHeld = min(minHeld, len(kvs(b.node(a.Self()))))
	}
	if minHeld < 40 {
		t.Errorf("with one forged Ack per round, b held as few as %d of a's 40 keys (views forgotten: %d)", minHeld, b.Stats().ViewsForgotten)
	}
}

// Invariant: an honest cluster is quiet in steady state: no view churns.
// With mixed limits (b's MaxKeysPerNode below the number of keys a holds)
// and a state larger than a datagram, b takes a prefix of a's state, the
// next delta would exceed the limit, forgetView empties the view, b takes
// a prefix again, and so on forever: a's state is resent every few rounds
// and b's subscribers are told of the same writes again and again.
func TestHostileMixedLimitsChurnForever(t *testing.T) {
	cfgA, cfgB := forTest(1), forTest(2)
	cfgB.Limits.MaxKeysPerNode = 20
	cfgA.MaxDatagramSize, cfgB.MaxDatagramSize = 1400, 1400
	a, b := newEngine(t, cfgA), newEngine(t, cfgB)
	value := strings.Repeat("v", 200)
	for k := range 30 {
		if err := a.Set(fmt.Sprintf("k%02d", k), value); err != nil {
			t.Fatal(err)
		}
	}
	fired := 0
	b.Subscribe("k", func(KeyChange) { fired++ })
	now := directRounds(t, t0, 20, a, b)
	forgotten, firedBefore := b.Stats().ViewsForgotten, fired
	directRounds(t, now, 100, a, b)
	if d := b.Stats().ViewsForgotten - forgotten; d > 0 {
		t.Errorf("in 100 rounds of steady honest gossip, b forgot its view of a %d times and told its subscribers of %d writes again (a's 30 keys never changed)",
			d, fired-firedBefore)
	}
}

// attacker is a source address no honest node uses.
var attacker = netip.MustParseAddrPort("192.0.2.66:7000")

// Invariant: invented nodes cannot keep an honest node out (issue 11: the
// table is Limits.MaxNodes; makeRoom evicts never-live, then superseded,
// then long-dead nodes). A forger that pushes alive notices for invented
// ids with rising heartbeats, from any source, makes them live at the
// receiver (an alive notice counts as direct contact); live nodes are
// never evicted, so once they fill the table every new honest node is
// refused (NodesRefused), even one that contacts the receiver directly
// every round, for as long as the forger keeps sending one push of a few
// notices per round. The cost for the forger is MaxNodes notices per
// detection interval, about 220 datagrams at the default 10,000.
func TestHostileInventedLiveNodesKeepHonestJoinerOut(t *testing.T) {
	cfgB := forTest(2)
	cfgB.Limits.MaxNodes = 8
	b, joiner := newEngine(t, cfgB), newEngine(t, forTest(3))
	now := t0
	hb := uint64(100)
	forgePush := func() {
		hb++
		p := &Push{ClusterID: "default-cluster"}
		for k := range 7 {
			p.Notices = append(p.Notices, Notice{Kind: NoticeAlive, ID: NodeID{Name: fmt.Sprintf("ghost-%d", k), Addr: netip.AddrPortFrom(localhost, uint16(9000+k))}, Heartbeat: hb})
		}
		b.Step(now, Inbound{From: attacker}, wire(t, p))
	}
	for range 5 {
		now = now.Add(time.Second)
		forgePush()
		b.Tick(now)
	}
	for range 30 {
		now = now.Add(time.Second)
		forgePush()
		b.Tick(now)
		joiner.Tick(now)
		syn := joiner.CreateSyn(now)
		enc := EncodeMessage(syn)
		if synAck := b.Step(now, Inbound{From: joiner.Self().Addr, Size: len(enc)}, wire(t, syn)).Reply; synAck != nil {
			if ack := joiner.Step(now, Inbound{From: b.Self().Addr}, wire(t, synAck)).Reply; ack != nil {
				b.Step(now, Inbound{From: joiner.Self().Addr}, wire(t, ack))
			}
		}
	}
	if !isLive(b, joiner.Self()) {
		t.Errorf("an honest node in direct contact with b for 30 rounds is not live at b: the table holds %d nodes (limit %d), all live invented ones but b; refused %d times",
			len(b.states), b.limits.MaxNodes, b.Stats().NodesRefused)
	}
}

// pushCluster returns n engines that see each other live, with direct
// handshakes among all pairs.
func pushCluster(t *testing.T, n int) ([]*Engine, time.Time) {
	t.Helper()
	var es []*Engine
	for i := range n {
		es = append(es, newEngine(t, forTest(uint16(i+1))))
	}
	now := t0
	for range 15 {
		now = now.Add(time.Second)
		for _, e := range es {
			e.Tick(now)
		}
		for i := range es {
			for j := range es {
				if i != j {
					syn := es[i].CreateSyn(now)
					if sa := es[j].Step(now, Inbound{From: es[i].Self().Addr}, wire(t, syn)).Reply; sa != nil {
						if ack := es[i].Step(now, Inbound{From: es[j].Self().Addr}, wire(t, sa)).Reply; ack != nil {
							es[j].Step(now, Inbound{From: es[i].Self().Addr}, wire(t, ack))
						}
					}
				}
			}
		}
	}
	for _, e := range es {
		if got := len(e.LiveNodes()); got != n {
			t.Fatalf("%v sees %d live nodes after warm-up, want %d", e.Self(), got, n)
		}
	}
	return es, now
}

// Invariant: a plaintext datagram from an unknown source makes the cluster
// send at most 3 times its size (docs/design/scale.md §8, QUIC's
// anti-amplification rule). onPush forwards any push with a Range, from
// any source, down the ring: one spoofed Push naming the whole ring makes
// the cluster send N−1 copies of it, and changing one byte of each forged
// push defeats the duplicate filter. Only PushRate (1,000 per node per
// second) bounds it: an N-fold amplifier inside the cluster.
func TestHostileForgedPushIsForwardedToTheWholeRing(t *testing.T) {
	es, now := pushCluster(t, 8)
	byAddr := map[netip.AddrPort]*Engine{}
	for _, e := range es {
		byAddr[e.Self().Addr] = e
	}
	// A harmless notice: an alive notice about an invented node.
	forged := &Push{ClusterID: "default-cluster", Range: &RingRange{After: 0, Upto: 0},
		Notices: []Notice{{Kind: NoticeAlive, ID: NodeID{Name: "x", Addr: netip.AddrPortFrom(localhost, 9)}, Heartbeat: 1}}}
	size := len(EncodeMessage(forged))
	sent := 0
	queue := []Envelope{{To: es[0].Self().Addr, Msg: forged}}
	first := true
	for len(queue) > 0 {
		env := queue[0]
		queue = queue[1:]
		e := byAddr[env.To]
		if e == nil {
			continue
		}
		from := attacker
		if !first {
			sent += len(EncodeMessage(env.Msg))
		}
		first = false
		out := e.Step(now, Inbound{From: from, Size: size}, wire(t, env.Msg))
		queue = append(queue, out.Pushes...)
		if out.Reply != nil {
			sent += len(EncodeMessage(out.Reply))
		}
	}
	if sent > 3*size {
		t.Errorf("one forged %d-byte Push from an unknown plaintext source made the cluster of %d send %d bytes (%.1f×)", size, len(es), sent, float64(sent)/float64(size))
	}
}

// Invariant: a keyless sender cannot aim the cluster's traffic at an
// address of its choice (docs/design/scale.md §8: no reflection). An
// alive notice counts as direct contact wherever it arrives, from any
// source: one forged push per round, naming the whole ring, with an alive
// notice for an invented node whose address is the victim's and a rising
// heartbeat, makes the invented node live at every honest node, and every
// honest node then picks it as a gossip target like any live peer: the
// victim receives Syns from the whole cluster, round after round, tens of
// times the forger's bytes.
func TestHostileForgedAliveNoticeReflectsSynsAtVictim(t *testing.T) {
	es, now := pushCluster(t, 8)
	byAddr := map[netip.AddrPort]*Engine{}
	for _, e := range es {
		byAddr[e.Self().Addr] = e
	}
	victim := netip.MustParseAddrPort("198.51.100.7:53")
	forgedBytes, reflected := 0, 0
	for r := range 20 {
		now = now.Add(time.Second)
		forged := &Push{ClusterID: "default-cluster", Range: &RingRange{After: 0, Upto: 0},
			Notices: []Notice{{Kind: NoticeAlive, ID: NodeID{Name: "ghost", Addr: victim}, Heartbeat: uint64(10 + r)}}}
		forgedBytes += len(EncodeMessage(forged))
		queue := []Envelope{{To: es[0].Self().Addr, Msg: forged}}
		for len(queue) > 0 {
			env := queue[0]
			queue = queue[1:]
			if e := byAddr[env.To]; e != nil {
				queue = append(queue, e.Step(now, Inbound{From: attacker, Size: 40}, wire(t, env.Msg)).Pushes...)
			}
		}
		for _, e := range es {
			round := e.Tick(now)
			for _, to := range round.Targets {
				if to == victim {
					reflected += len(EncodeMessage(round.Syn))
				}
			}
		}
	}
	if reflected > 3*forgedBytes {
		t.Errorf("%d forged bytes (one push per round) made an 8-node cluster send %d bytes of Syns to %v, an address nobody heard from (%.0f×)",
			forgedBytes, reflected, victim, float64(reflected)/float64(forgedBytes))
	}
}
