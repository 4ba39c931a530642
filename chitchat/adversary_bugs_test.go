package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Minimal reproductions of what the adversary property (adversary_test.go)
// found. Each names the invariant it breaks.

// A forged delta that claims the owner's next versions, planted before the
// owner writes them, is never refuted: the owner sees the claim only once
// it has used those versions itself, when the claim no longer exceeds its
// max version (docs/design/scale.md §6 refutes only claims above it). Its
// holders then take the owner's real writes at those versions for known
// and never apply them: the owner's writes never reach them.
func TestPreclaimedVersionsSwallowOwnerWrites(t *testing.T) {
	a, b, c, now := trio(t)
	next := b.selfState().maxVersion + 1
	forgeDelta(t, now, c, NodeDelta{ID: b.Self(), LastGCVersion: 0, FromVersionExcluded: next - 1, MaxVersion: next,
		KeyValues: []KeyValueMutation{kv("role", "forged", next, StatusSet)}})
	if err := b.Set("after", "yes"); err != nil { // takes version next
		t.Fatal(err)
	}
	gossipRounds(t, now, 10, a, b, c)
	for _, e := range []*Engine{a, c} {
		if v, _ := e.node(b.Self()).Get("after"); v != "yes" {
			t.Errorf("%v's view of b: after=%q, want yes (b's max version %d, the view's %d; refutations at b: %d)",
				e.Self(), v, b.selfState().maxVersion, e.node(b.Self()).maxVersion, b.Stats().Refutations)
		}
	}
}

// directRounds runs n rounds of handshakes between a and b in both
// directions, every message arriving from its sender's advertised address
// (direct contact, docs/design/scale.md §5).
func directRounds(t *testing.T, now time.Time, n int, a, b *Engine) time.Time {
	t.Helper()
	step := func(to, from *Engine, m Message) Message {
		b := EncodeMessage(m)
		return to.Step(now, Inbound{From: from.Self().Addr, Size: len(b)}, wire(t, m)).Reply
	}
	for range n {
		now = now.Add(time.Second)
		a.Tick(now)
		b.Tick(now)
		for _, p := range [][2]*Engine{{a, b}, {b, a}} {
			x, y := p[0], p[1]
			if synAck := step(y, x, x.CreateSyn(now)); synAck != nil {
				if ack := step(x, y, synAck); ack != nil {
					step(y, x, ack)
				}
			}
		}
	}
	return now
}

// A forged first mention of a node the receiver does not hold yet (a
// digest entry or a reset) leaves a state the receiver never advertises:
// only a heartbeat rise is evidence once a baseline is set, and direct
// contact counts only while the baseline is 0. The owner never sees the
// claim, so never refutes it: with a heartbeat at the refutation limit its
// real heartbeats never rise above the baseline and it stays dead there for
// good; with a forged reset (GC version past the owner's versions) every
// real delta is rejected as well.
func TestForgedFirstMentionIsNeverRefuted(t *testing.T) {
	tests := []struct {
		name  string
		forge func(t *testing.T, victim *Engine, owner NodeID)
	}{
		{"heartbeat", func(t *testing.T, victim *Engine, owner NodeID) {
			forge(t, t0, victim, Digest{{ID: owner, NodeDigest: NodeDigest{Heartbeat: refuteLimit - 1}}})
		}},
		{"reset", func(t *testing.T, victim *Engine, owner NodeID) {
			forgeDelta(t, t0, victim, NodeDelta{ID: owner, LastGCVersion: refuteLimit + 1, MaxVersion: 5,
				KeyValues: []KeyValueMutation{kv("role", "forged", 5, StatusSet)}})
			forge(t, t0, victim, Digest{{ID: owner, NodeDigest: NodeDigest{Heartbeat: refuteLimit - 1, LastGCVersion: refuteLimit + 1, MaxVersion: 5}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newEngine(t, forTest(1)), newEngine(t, forTest(2))
			if err := a.Set("role", "indexer"); err != nil {
				t.Fatal(err)
			}
			tt.forge(t, b, a.Self())
			directRounds(t, t0, 30, a, b)
			if !isLive(b, a.Self()) {
				ns := b.node(a.Self())
				t.Errorf("a is dead at b after 30 rounds of direct gossip (b's view: heartbeat %d, evidenced %v; a's heartbeat %d; refutations at a: %d)",
					ns.heartbeat, ns.evidenced, a.selfState().heartbeat, a.Stats().Refutations+a.Stats().Reincarnations)
			}
			if v, _ := b.node(a.Self()).Get("role"); v != "indexer" {
				t.Errorf("b's view of a: role=%q, want indexer", v)
			}
		})
	}
}

// A plaintext Syn with a whole-view digest (no coverage: a hand-built or
// v0-style message) from a sender we do not know may be answered with 3
// times its size only. When our digest does not fit, onSyn falls back to a
// part of the ring; when not even one bucket fits, replyDigest returns a
// coverage of 0 buckets, which onSyn sends: a SynAck no decoder accepts
// ("coverage of 0 buckets"). A reply must decode, or not be sent.
func TestRepliesToTinySynsDecode(t *testing.T) {
	cfg := forTest(1)
	cfg.ClusterID = "c"
	for pad := range 40 {
		e := newEngine(t, cfg)
		addNode(t, e, id(2)) // our digest: 2 entries
		syn := &Syn{ClusterID: "c", Pad: pad}
		b := EncodeMessage(syn)
		out := e.Step(t0, Inbound{From: netip.MustParseAddrPort("192.0.2.1:9"), Size: len(b)}, syn)
		if out.Reply == nil {
			continue // not answering is fine
		}
		if _, err := DecodeMessage(EncodeMessage(out.Reply)); err != nil {
			t.Fatalf("the reply to a %d-byte Syn does not decode: %v", len(b), err)
		}
	}
}

// reincarnate once took the generation max(old+1, now in nanoseconds),
// without looking at what it held: a forger that predicted it (the time is
// public) first mentioned that identity, then forced the reincarnation with
// a claim at the refutation limit, and the engine held two states for its
// own new ID. The generation now takes up to 2^24 ns of jitter, and skips
// identities held or collected: with the jitter at 0 (zeroSource), the
// predicted identity is held and must be skipped.
func TestReincarnationIntoAHeldIdentity(t *testing.T) {
	b := newEngine(t, forTest(2))
	b.rng = rand.New(zeroSource{})
	next := b.Self()
	next.Generation = uint64(t0.UnixNano())
	forge(t, t0, b, Digest{{ID: next, NodeDigest: NodeDigest{Heartbeat: 5, MaxVersion: 3}}})
	forge(t, t0, b, Digest{{ID: b.Self(), NodeDigest: NodeDigest{Heartbeat: maxSafeVersion}}})
	if b.Stats().Reincarnations != 1 {
		t.Fatalf("Reincarnations = %d, want 1", b.Stats().Reincarnations)
	}
	if b.Self() == next {
		t.Errorf("b reincarnated into %v, an identity it held", next)
	}
	if err := checkInvariants(b, nil); err != nil {
		t.Errorf("after reincarnating: %v (states %v)", err, b.NodeIDs())
	}
}

// zeroSource is a rand.Source that always returns 0.
type zeroSource struct{}

func (zeroSource) Uint64() uint64 { return 0 }

// readCover walks a bucket of e.byRef and observes the positional
// heartbeats of a matching summary. Observing the self node's refutes a
// larger one; when the self heartbeat sits at refuteLimit (a first claim
// at refuteLimit-1 put it there: refutations stop one short of the limit,
// and the limit is a multiple of 2^16), any larger low 16 bits are a claim
// at the limit: the node reincarnates in the middle of the walk, and
// dropNode/createNode shift e.byRef under it. With an unadvertised node
// between the old and the new ref, one more node passes the walk's filter
// than the summary counted, and s.Heartbeats[j] panics: two forged
// datagrams (the second computable from what the victim gossips) crash
// the process.
func TestReincarnationDuringSummaryWalk(t *testing.T) {
	self := id(2)
	old := nodeRef(self)
	// The time of the reincarnation picks the new generation, hence the
	// new ref: take one whose ref comes after the old one, and an invented
	// node whose ref falls between the two.
	at, x := t0, NodeID{}
	for k := 0; x == (NodeID{}); k++ {
		at = t0.Add(time.Duration(k))
		next := self
		next.Generation = uint64(at.UnixNano())
		if nodeRef(next) <= old {
			continue
		}
		for i := range 1000 {
			c := NodeID{Name: fmt.Sprintf("x%d", i), Addr: id(3).Addr}
			if r := nodeRef(c); r > old && r < nodeRef(next) {
				x = c
				break
			}
		}
	}
	e := newEngine(t, forTest(2))
	e.Process(at, wire(t, &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: self, NodeDigest: NodeDigest{Heartbeat: refuteLimit - 1}}}}))
	if hb := e.selfState().heartbeat; hb != refuteLimit {
		t.Fatalf("self heartbeat %d after the first claim, want refuteLimit %d", hb, uint64(refuteLimit))
	}
	e.Process(at, wire(t, &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: x, NodeDigest: NodeDigest{Heartbeat: 1}}}}))
	sum := BucketSummary{Bucket: 0, Hash: e.selfState().stateHash(), Heartbeats: []uint16{0x8000}}
	syn := &Syn{ClusterID: "default-cluster", Cover: &Coverage{Bits: 0, First: 0, Count: 1, Summaries: []BucketSummary{sum}}}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Process panicked on a summary that matches the victim's view: %v", r)
			}
		}()
		e.Process(at, wire(t, syn))
	}()
	if e.Stats().Reincarnations != 1 {
		t.Errorf("Reincarnations = %d, want 1", e.Stats().Reincarnations)
	}
	if err := checkInvariants(e, nil); err != nil {
		t.Error(err)
	}
}

// trioWith is trio with c built from cfg (a and b keep forTest's).
func trioWith(t *testing.T, cfg Config) (a, b, c *Engine, now time.Time) {
	t.Helper()
	a, b, c = newEngine(t, forTest(1)), newEngine(t, forTest(2)), newEngine(t, cfg)
	now = gossipRounds(t, t0, 20, a, b, c)
	for _, e := range []*Engine{a, b, c} {
		if got := len(e.LiveNodes()); got != 3 {
			t.Fatalf("%v sees %d live nodes after warm-up, want 3", e.Self(), got)
		}
	}
	return a, b, c, now
}

// Invented nodes that the forger keeps heart-beating for a few rounds are
// seen live, so makeRoom never evicts them (it evicts only nodes never seen
// live). Once they fill Limits.MaxNodes, a node the victim does not hold
// yet is refused until the invented nodes, dead since the forger stopped,
// are garbage collected (DeadNodeGracePeriod, 24 h by default). The forger
// can make that node an honest one: a claim at the refutation limit makes
// it reincarnate, and its new identity stays unknown, hence dead, at the
// victim.
func TestInventedLiveNodesLockOutAReincarnatedNode(t *testing.T) {
	cfg := forTest(3)
	cfg.Limits.MaxNodes = 8
	a, b, c, now := trioWith(t, cfg)
	var invented Digest
	for i := range 5 {
		invented = append(invented, DigestEntry{ID: NodeID{Name: fmt.Sprintf("ghost-%d", i), Addr: id(uint16(9000 + i)).Addr}})
	}
	for hb := uint64(1); hb <= 6; hb++ { // rises, a round apart: live
		for i := range invented {
			invented[i].Heartbeat = hb
		}
		forge(t, now, c, invented)
		now = now.Add(time.Second)
		c.Tick(now)
	}
	if n := len(c.NodeIDs()); n != cfg.Limits.MaxNodes {
		t.Fatalf("c holds %d nodes, want the limit %d: the test no longer attacks anything", n, cfg.Limits.MaxNodes)
	}
	forge(t, now, b, Digest{{ID: b.Self(), NodeDigest: NodeDigest{Heartbeat: maxSafeVersion}}}) // b reincarnates
	gossipRounds(t, now, 30, a, b, c)
	if !isLive(c, b.Self()) {
		_, held := c.lookup(b.Self())
		t.Errorf("b's new identity is dead at c 30 rounds after the forger stopped (held %v, NodesRefused %d, ghosts held %d)",
			held, c.Stats().NodesRefused, len(c.NodeIDs())-3)
	}
}

// A forger writes keys under b's id at versions b already used but c has
// not received yet (indistinguishable from the truth, docs/design/scale.md
// §6) until c's view of b holds Limits.MaxKeysPerNode keys. b's own state
// stays within the limit (it rewrote one key at those versions), but every
// later delta of b that adds a key would be refused at c: c's view of b
// frozen for good. c now forgets its view when that happens, and takes b's
// state afresh, without the forged keys.
func TestForgedKeysFreezeAViewAtMaxKeysPerNode(t *testing.T) {
	cfg := forTest(3)
	cfg.Limits.MaxKeysPerNode = 4
	a, b, c, now := trioWith(t, cfg)
	view := c.node(b.Self()).maxVersion
	for i := range 4 { // news c has not received yet: one key, rewritten
		if err := b.Set("w", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var forged []KeyValueMutation
	for i := range 4 {
		forged = append(forged, kv(fmt.Sprintf("f%d", i), "forged", view+uint64(i)+1, StatusSet))
	}
	forgeDelta(t, now, c, NodeDelta{ID: b.Self(), FromVersionExcluded: view, MaxVersion: view + 4, KeyValues: forged})
	if err := b.Set("after", "yes"); err != nil {
		t.Fatal(err)
	}
	gossipRounds(t, now, 30, a, b, c)
	got := kvs(c.node(b.Self()))
	want := kvs(b.selfState())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("c's view of b (-b's state +c's view):\n%s(max versions: b %d, c's view %d; deltas refused at c: %d, views forgotten: %d)",
			diff, b.selfState().maxVersion, c.node(b.Self()).maxVersion, c.Stats().NodeDeltasRefused, c.Stats().ViewsForgotten)
	}
}

// Replay windows are per sender address, and the sender address and the
// counter are whatever the sealer put in: a key holder once sealed one
// datagram claiming a's address with a counter near 2^64, and the receiver
// refused every later datagram of a as a replay, for good. Counters are
// now times in nanoseconds, a receiver refuses any more than
// maxCounterLead ahead of its clock, and a window remembers a set of
// counters above a floor: one forged counter blocks nothing, and filling
// the set with forged counters just under the lead blocks a at b for at
// most maxCounterLead.
func TestKeyHolderPoisonsReplayWindow(t *testing.T) {
	ring, err := NewKeyring(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	clock := uint64(t0.UnixNano())
	tick := func() uint64 { return clock }
	aAddr, bAddr := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	a := newSealer(ring, "c", aAddr, clock, 16)
	b := newSealer(ring, "c", bAddr, clock, 16)
	a.clock, b.clock = tick, tick
	msg := EncodeMessage(&Syn{ClusterID: "c"})
	refused := func() int {
		n := 0
		for range 100 {
			if _, err := b.open(a.seal(nil, msg, bAddr), nil); err != nil {
				n++
			}
		}
		return n
	}
	if n := refused(); n > 0 {
		t.Fatalf("%d of a's first 100 datagrams refused", n)
	}
	forger := newSealer(ring, "c", aAddr, ^uint64(0)-1, 16) // claims to be a
	forger.clock = tick
	if _, err := b.open(forger.seal(nil, msg, bAddr), nil); err != errFuture {
		t.Fatalf("a counter near 2^64: got %v, want errFuture", err)
	}
	forger = newSealer(ring, "c", aAddr, clock+uint64(maxCounterLead)-replaySet-3, 16)
	forger.clock = tick
	if _, err := b.open(forger.seal(nil, msg, bAddr), nil); err != nil {
		t.Fatalf("a counter just under the lead: %v", err)
	}
	if n := refused(); n > 0 {
		t.Errorf("after one forged counter, b refused %d of a's next 100 datagrams, want none", n)
	}
	for range replaySet + 1 {
		if _, err := b.open(forger.seal(nil, msg, bAddr), nil); err != nil {
			t.Fatalf("forged counter: %v", err)
		}
	}
	if n := refused(); n != 100 {
		t.Errorf("with the set full of forged counters, b refused %d of a's next 100 datagrams, want all", n)
	}
	clock += uint64(maxCounterLead)
	if n := refused(); n > 0 {
		t.Errorf("%v after the forgery, b refused %d of a's next 100 datagrams, want none", maxCounterLead, n)
	}
}

// A Syn's coverage may name up to 2^20 buckets (codec.go's maxBits), and
// replyCover walks every covered bucket at the Syn's bits: an empty bucket
// costs no reply bytes, so the budget never stops the walk. A 34-byte
// forged Syn with Bits 20 and Count 2^20 costs its receiver about a million
// bucket look-ups under the engine lock (13.7 ms on the machine that found
// it, against 1.5 µs for Bits 0): a CPU amplifier open to any plaintext
// sender. Not a test (timing is not deterministic): compare
//
//	go test -run '^$' -bench 'BenchmarkForgedWideCoverageSyn' ./chitchat/
func BenchmarkForgedWideCoverageSyn(b *testing.B) {
	for _, bits := range []uint8{0, 20} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			e := newEngine(b, forTest(1))
			addNode(b, e, id(2))
			addNode(b, e, id(3))
			m, err := DecodeMessage(EncodeMessage(&Syn{ClusterID: "default-cluster", Cover: &Coverage{Bits: bits, Count: 1 << bits}}))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				e.Process(t0, m)
			}
		})
	}
}

// The same lock-out without invented nodes: every claim at the refutation
// limit makes the owner reincarnate, and its old identity, live until
// then, stays at every peer (never evicted: seen live) until it is
// garbage collected after DeadNodeGracePeriod. One datagram per forced
// reincarnation, to the owner alone, fills every peer's table with the
// owner's past identities; its current one is then refused everywhere.
func TestForcedReincarnationsFillMaxNodes(t *testing.T) {
	cfg := forTest(3)
	cfg.Limits.MaxNodes = 6
	a, b, c, now := trioWith(t, cfg)
	for range 5 {
		now = now.Add(time.Second)
		forge(t, now, b, Digest{{ID: b.Self(), NodeDigest: NodeDigest{Heartbeat: maxSafeVersion}}})
		now = gossipRounds(t, now, 5, a, b, c)
	}
	if !isLive(c, b.Self()) {
		t.Errorf("b's current identity is dead at c after 5 forced reincarnations (c holds %d nodes, limit %d; NodesRefused %d)",
			len(c.NodeIDs()), cfg.Limits.MaxNodes, c.Stats().NodesRefused)
	}
}

// Engine.Process is public API and does not go through the decoder, which
// checks that a coverage is a run of 1 to 2^Bits buckets with Bits at most
// 20. Process takes any Coverage and answers with a coverage built on it
// that no decoder accepts (issue 11, item 7, for digests: normalize or
// reject).
func TestProcessValidatesCoverage(t *testing.T) {
	tests := []struct {
		name  string
		cover Coverage
	}{
		{"no bucket", Coverage{Bits: 2, Count: 0}},
		{"40 bits", Coverage{Bits: 40, Count: 3}},
		{"70 bits", Coverage{Bits: 70, Count: 3}},
		{"more buckets than the ring", Coverage{Bits: 1, Count: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _, now := trio(t)
			reply := a.Process(now, &Syn{ClusterID: "default-cluster", Cover: &tt.cover})
			if reply == nil {
				return // refused: fine
			}
			if _, err := DecodeMessage(EncodeMessage(reply)); err != nil {
				t.Errorf("the reply does not decode: %v", err)
			}
		})
	}
}

// A digest entry built by hand (Engine.Process does not go through the
// decoder) with an invalid address is held and, once it rises, advertised:
// it encodes as [::]:0, so every peer holds a node that exists nowhere.
// createFromDelta refuses such ids; observeEntries does not.
func TestProcessRefusesInvalidAddresses(t *testing.T) {
	a, _, _, now := trio(t)
	bad := NodeID{Name: "no-address"}
	for hb := uint64(1); hb <= 3; hb++ {
		a.Process(now, &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: bad, NodeDigest: NodeDigest{Heartbeat: hb}}}})
	}
	if _, held := a.lookup(bad); held {
		t.Errorf("a holds %v, whose address is invalid", bad)
	}
}

// In plaintext, a reply to a sender we do not hold at the datagram's source
// address is at most 3 times the datagram's size (the source can be
// spoofed: docs/design/scale.md §8). onSyn computes that budget before
// observing the digest; onSynAck computes it after, when the digest's
// marked sender, claimed at the spoofed address, has just become direct
// evidence: a 24-byte SynAck from a spoofed source gets a full-size Ack
// (the whole state the "sender" lacks) sent to that source.
func TestSpoofedSynAckIsNotAmplified(t *testing.T) {
	a, _, _, now := trio(t)
	r := testRand(t, 3)
	for i := range 50 {
		if err := a.Set(fmt.Sprintf("key-%02d", i), fmt.Sprintf("%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64())); err != nil {
			t.Fatal(err)
		}
	}
	target := netip.MustParseAddrPort("192.0.2.7:53") // not a cluster member
	x := NodeID{Name: "x", Addr: target}
	m := &SynAck{Digest: Digest{{ID: x, NodeDigest: NodeDigest{Heartbeat: 1}}}, Sender: x}
	b := EncodeMessage(m)
	out := a.Step(now, Inbound{From: target, Size: len(b)}, wire(t, m))
	if out.Reply == nil {
		return
	}
	if n := len(EncodeMessage(out.Reply)); n > amplification*len(b) {
		t.Errorf("a %d-byte SynAck from a spoofed source got a %d-byte %v (%d times its size; at most %d)",
			len(b), n, out.Reply.Type(), n/len(b), amplification)
	}
}

// checkLeft marks a node left as soon as its LeftKey shows, and nothing
// ever clears the mark: not the owner's refutation, whose reset removes
// the forged key from the holder's view. One forged delta carrying
// LeftKey under a live node's id makes the receiver report it left (not
// live, out of the failure detector's hands) until it is garbage
// collected, DeadNodeGracePeriod later (24 h by default).
func TestForgedLeaveIsUndoneByTheRefutation(t *testing.T) {
	a, b, c, now := trio(t)
	view := c.node(b.Self()).maxVersion
	forgeDelta(t, now, c, NodeDelta{ID: b.Self(), FromVersionExcluded: view, MaxVersion: view + 1,
		KeyValues: []KeyValueMutation{kv(LeftKey, "", view+1, StatusSet)}})
	if len(c.LeftNodes()) != 1 {
		t.Fatalf("the forged leave was not taken at c (left: %v): the test no longer attacks anything", c.LeftNodes())
	}
	gossipRounds(t, now, 20, a, b, c)
	if _, stillForged := c.node(b.Self()).Get(LeftKey); stillForged {
		t.Fatalf("b did not refute the forged leave")
	}
	for _, e := range []*Engine{a, c} {
		if !isLive(e, b.Self()) {
			t.Errorf("b is not live at %v 20 rounds after refuting a forged leave (left there: %v)", e.Self(), e.LeftNodes())
		}
	}
}
