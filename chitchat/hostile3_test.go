package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Failing reproductions of the third hostile review (issue 14: a
// cold-start cluster is live within one round). Each states the invariant
// it breaks.

// Invariant: every push an engine hands out fits Config.MaxDatagramSize
// (the Server refuses to send a larger one: the push, with our own news,
// announcement and death notices in it, is lost).
//
// holdNotices keeps up to 256 notices of rate-limited forwards for the next
// Flush, and Flush puts every pending notice in one push whatever its size:
// at 1,400 bytes, about 30 held alive notices already overflow it. A member
// (or, in plaintext, anyone spoofing a member's address) that sends a few
// pushes while the forwarder is out of tokens makes its next pushes
// unsendable; with the default 65,507-byte budget, 256 notices of names near
// Limits.MaxNodeNameSize do the same.
func TestHostile3HeldNoticesOverflowTheDatagram(t *testing.T) {
	const mtu = 1400
	p := livePushNet(t, 5, func(c *Config) { c.PushRate = 30; c.MaxDatagramSize = mtu }) // bucket of 3 tokens
	from, f := p.engines[0], p.engines[1]
	whole := RingRange{After: from.selfState().ref, Upto: from.selfState().ref}
	for k := range 10 {
		m := &Push{ClusterID: from.cfg.ClusterID, Range: &whole}
		for i := range 30 {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(k), byte(i)}), 7000)
			m.Notices = append(m.Notices, Notice{Kind: NoticeAlive, ID: NodeID{Name: fmt.Sprintf("joiner-%d-%d", k, i), Generation: 1, Addr: addr}, Heartbeat: 3})
		}
		if size := EncodedSize(m); size > mtu {
			t.Fatalf("test setup: forged push %d is %d bytes, above %d", k, size, mtu)
		}
		f.Step(p.now, Inbound{From: from.Self().Addr}, wire(t, m))
	}
	if err := f.Set("news", "fresh"); err != nil {
		t.Fatal(err)
	}
	pushes := f.Flush(p.now.Add(time.Second))
	if len(pushes) == 0 {
		t.Fatalf("f sent no push a second later (rate limited %d)", f.push.stats.RateLimited)
	}
	for _, env := range pushes {
		if size := EncodedSize(env.Msg); size > mtu {
			t.Errorf("f's push to %v is %d bytes (%d notices), above MaxDatagramSize %d: the Server drops it, with f's own news",
				env.To, size, len(env.Msg.(*Push).Notices), mtu)
		}
	}
}

// Invariant: a plaintext datagram does not make us open connections to an
// address we have never heard from (docs/PROTOCOL.md §10.3, README
// "Anti-amplification": a spoofed source gets at most 3 times the
// datagram back). A stream exchange opens a TCP connection to the address
// and writes our whole view in one frame (CreateStreamSyn), a thousand
// times the Syn that asked for it in a cluster of a few hundred nodes.
//
// onSyn makes the marked sender known at the source address (observe) and
// then asks for a stream with it (wantStream checks knownAt after observe),
// and Output.Streams now has the Server dial at once, per datagram, rather
// than at most maxStreamsOut per round: each spoofed Syn naming a new
// address (a victim's TCP service) makes every node it reaches connect
// there and, if it accepts, send it the whole view.
func TestHostile3SpoofedSynDialsTheVictimAtOnce(t *testing.T) {
	e := engineWithKeys(t, 200)
	var dialled []netip.AddrPort
	synSize := 0
	for i := range 5 {
		victim := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 80}), uint16(80+i))
		var streams []netip.AddrPort
		streams, synSize = spoofedSyn(t, e, t0, victim, 1)
		dialled = append(dialled, streams...)
	}
	if len(dialled) > 0 {
		t.Errorf("5 spoofed %d-byte plaintext Syns from addresses never heard from made the engine ask to dial %v at once (each a TCP connection carrying our whole view, %d bytes here and about 40 more per node held)",
			synSize, dialled, EncodedSize(e.CreateStreamSyn(t0)))
	}
}

// Two spoofed Syns per address make the address one we have heard from;
// still, at most immediateStreams messages per gossip interval start
// streams at once, so the dials stay bounded (twice the round's
// maxStreamsOut).
func TestHostile3ImmediateStreamsAreRateLimited(t *testing.T) {
	e := engineWithKeys(t, 200)
	var dialled []netip.AddrPort
	now := t0
	for i := range 2 * immediateStreams {
		victim := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 80}), uint16(80+i))
		for hb := range uint64(2) {
			streams, _ := spoofedSyn(t, e, now, victim, 1+hb)
			dialled = append(dialled, streams...)
			now = now.Add(time.Millisecond)
		}
	}
	if len(dialled) > immediateStreams {
		t.Errorf("%d spoofed Syns within %v made the engine ask to dial %v at once, want at most %d per gossip interval (%v)",
			4*immediateStreams, now.Sub(t0), dialled, immediateStreams, e.cfg.GossipInterval)
	}
}

// A push names the origin's node by ref; a receiver that does not hold a
// node with that ref skips the node delta (it cannot create a node from a
// ref) and counts it; one that holds it applies it.
func TestPushDeltaByRefOfAnUnknownNodeIsSkipped(t *testing.T) {
	origin := newEngine(t, forTest(7))
	if err := origin.Set("role", "indexer"); err != nil {
		t.Fatal(err)
	}
	m := &Push{ClusterID: origin.cfg.ClusterID, Delta: origin.selfDelta0(0, 1000)}
	if n := len(m.Delta.Nodes); n != 1 || m.Delta.Nodes[0].Ref != origin.selfState().ref || m.Delta.Nodes[0].ID != (NodeID{}) {
		t.Fatalf("the push's delta is %+v, want one node named by the origin's ref", m.Delta.Nodes)
	}

	stranger := newEngine(t, forTest(8))
	stranger.Step(t0, Inbound{From: origin.Self().Addr, Authentic: true}, wire(t, m))
	if got := stranger.Stats().NodeDeltasUnknownRef; got != 1 {
		t.Errorf("NodeDeltasUnknownRef = %d, want 1", got)
	}
	if _, ok := stranger.lookup(origin.Self()); ok {
		t.Errorf("a node was created from a delta naming it by ref")
	}

	// Once the stranger holds the origin (a handshake), the same push applies.
	handshake(t, t0, origin, stranger)
	if err := origin.Set("zone", "eu"); err != nil {
		t.Fatal(err)
	}
	ns, _ := stranger.lookup(origin.Self())
	m = &Push{ClusterID: origin.cfg.ClusterID, Delta: origin.selfDelta0(ns.maxVersion, 1000)}
	stranger.Step(t0, Inbound{From: origin.Self().Addr, Authentic: true}, wire(t, m))
	if v, ok := ns.Get("zone"); !ok || v != "eu" {
		t.Errorf("after the push by ref, the stranger holds zone=%q (%v), want eu", v, ok)
	}
}

// engineWithKeys returns an engine holding keys keys of its own.
func engineWithKeys(t *testing.T, keys int) *Engine {
	t.Helper()
	e := newEngine(t, forTest(1))
	for k := range keys {
		if err := e.Set(fmt.Sprintf("key-%03d", k), "some value of the node"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// spoofedSyn hands e a plaintext Syn from a "victim" node at addr, with
// heartbeat hb, arriving from addr, and returns the streams e asks to
// start at once and the Syn's size.
func spoofedSyn(t *testing.T, e *Engine, now time.Time, addr netip.AddrPort, hb uint64) ([]netip.AddrPort, int) {
	t.Helper()
	id := NodeID{Name: "victim", Addr: addr}
	syn := &Syn{ClusterID: e.cfg.ClusterID, Sender: id, Digest: Digest{{ID: id, NodeDigest: NodeDigest{Heartbeat: hb}}}}
	size := EncodedSize(syn)
	return e.Step(now, Inbound{From: addr, Size: size}, wire(t, syn)).Streams, size
}
