package chitchat

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Protocol v1 (docs/design/scale.md): partial digests that fit any datagram,
// positional summaries, direct evidence, bounded plaintext replies.

// crowd returns an engine that holds n peers (all heard from, with one key
// each) besides itself, at MaxDatagramSize mtu.
func crowd(t *testing.T, self uint16, n, mtu int) *Engine {
	t.Helper()
	cfg := forTest(self)
	cfg.MaxDatagramSize = mtu
	e := newEngine(t, cfg)
	for i := range n {
		ns := addNode(t, e, NodeID{Name: fmt.Sprintf("peer-%05d", i), Addr: netip.AddrPortFrom(localhost, uint16(20000+i))})
		ns.heartbeat = uint64(1000 + i)
		setVersion(t, ns, "k", "v", 1)
	}
	return e
}

// At any cluster size, every Syn and SynAck fits the datagram, and
// successive Syns cover the whole ring.
func TestPartialDigestsFitAnyDatagram(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int
		mtu  int
	}{
		{"3,000 nodes at 1,200 bytes", 3000, 1200},
		{"10,000 nodes at 1,400 bytes", 10000, 1400},
		{"500 nodes at 512 bytes", 500, MinDatagramSize},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := crowd(t, 1, tt.n, tt.mtu), crowd(t, 2, tt.n, tt.mtu)
			covered := map[uint32]bool{}
			var bits uint8
			syns := 0
			for len(covered) == 0 || len(covered) < 1<<bits {
				syn := a.CreateSyn(t0)
				syns++
				if n := len(EncodeMessage(syn)); n > tt.mtu {
					t.Fatalf("Syn %d is %d bytes, above %d", syns, n, tt.mtu)
				}
				bits = syn.Cover.Bits
				for o := range syn.Cover.Count {
					covered[(syn.Cover.First+o)&(1<<bits-1)] = true
				}
				reply := b.Process(t0, wire(t, syn))
				if n := len(EncodeMessage(reply)); n > tt.mtu {
					t.Fatalf("SynAck to Syn %d is %d bytes, above %d", syns, n, tt.mtu)
				}
				if syns > 1<<bits {
					t.Fatalf("%d Syns did not cover the %d buckets", syns, 1<<bits)
				}
			}
			t.Logf("%d nodes at %d bytes: %d buckets covered by %d Syns", tt.n+1, tt.mtu, 1<<bits, syns)
		})
	}
}

// Two engines with the same view exchange summaries only: no delta, no
// explicit entries but the senders', and heartbeats still flow
// (positionally, exactly).
func TestMatchingSummariesCarryHeartbeats(t *testing.T) {
	a, b := crowd(t, 1, 100, 1400), crowd(t, 2, 100, 1400)
	// Each knows the other, heard from.
	for _, p := range [][2]*Engine{{a, b}, {b, a}} {
		ns := addNode(t, p[0], p[1].Self())
		ns.heartbeat = p[1].selfState().heartbeat
		ns.maxVersion = p[1].selfState().maxVersion
	}
	peer := NodeID{Name: "peer-00042", Addr: netip.AddrPortFrom(localhost, 20042)}
	a.node(peer).heartbeat += 3 // a has heard a fresher heartbeat
	syn := a.CreateSyn(t0)
	if len(syn.Digest) != 1 || syn.Cover == nil || len(syn.Cover.Summaries) == 0 {
		t.Fatalf("Syn: %d explicit entries, coverage %+v; want only a's own entry and summaries", len(syn.Digest), syn.Cover)
	}
	synAck := b.Process(t0, wire(t, syn)).(*SynAck)
	if len(synAck.Delta.Nodes) != 0 {
		t.Errorf("SynAck carries %d node deltas, want none", len(synAck.Delta.Nodes))
	}
	if len(synAck.Digest) != 2 {
		t.Errorf("SynAck lists %d entries explicitly, want b's own and b's view of a", len(synAck.Digest))
	}
	if got, want := b.node(peer).heartbeat, a.node(peer).heartbeat; got != want {
		t.Errorf("b's view of %v's heartbeat = %d, want a's %d", peer, got, want)
	}
	if b.fd.Len() == 0 {
		t.Error("the positional heartbeats fed no failure detector window")
	}
}

// A summary that differs from the receiver's view is answered with that
// bucket fully explicit, and the initiator's Ack then sends what the
// responder lacks.
func TestMismatchedSummaryIsAnsweredExplicitly(t *testing.T) {
	a, b := crowd(t, 1, 40, 1400), crowd(t, 2, 40, 1400)
	peer := NodeID{Name: "peer-00007", Addr: netip.AddrPortFrom(localhost, 20007)}
	setVersion(t, a.node(peer), "news", "fresh", 2)
	syn := a.CreateSyn(t0)
	synAck := b.Process(t0, wire(t, syn)).(*SynAck)
	if _, ok := synAck.Digest.Get(peer); !ok {
		t.Fatalf("b's answer does not list %v explicitly (digest of %d entries)", peer, len(synAck.Digest))
	}
	ack := a.Process(t0, wire(t, synAck)).(*Ack)
	b.Process(t0, wire(t, ack))
	if v, _ := b.node(peer).Get("news"); v != "fresh" {
		t.Errorf("b's view of %v news = %q after one exchange, want fresh", peer, v)
	}
}

// A Syn from its own sender is direct evidence: the sender is advertised
// and its detector window starts at once; the same Syn relayed from another
// address is hearsay.
func TestDirectContactIsEvidence(t *testing.T) {
	for _, tt := range []struct {
		name   string
		from   netip.AddrPort
		direct bool
	}{
		{"from the sender", id(2).Addr, true},
		{"relayed", id(3).Addr, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newEngine(t, forTest(1)), newEngine(t, forTest(2))
			a.Step(t0, Inbound{From: tt.from, Authentic: true}, wire(t, b.CreateSyn(t0)))
			ns := a.node(b.Self())
			if ns == nil {
				t.Fatal("the Syn did not create its sender")
			}
			if ns.evidenced != tt.direct {
				t.Errorf("evidenced = %v, want %v", ns.evidenced, tt.direct)
			}
			if _, ok := a.fd.Phi(ns.slot, t0); ok && !tt.direct {
				t.Error("hearsay started a detector window with an interval")
			}
		})
	}
}

// Plaintext answers are bounded to 3 times the request unless it comes from
// a node we know at that address; padded first contacts get an answer.
func TestPlaintextRepliesAreBounded(t *testing.T) {
	stranger := newEngine(t, forTest(9))
	syn := stranger.CreateSyn(t0)
	size := len(EncodeMessage(syn))
	b := crowd(t, 2, 200, MaxDatagramSize)
	if reply := b.Step(t0, Inbound{From: id(9).Addr, Size: size}, wire(t, syn)).Reply; reply != nil {
		if n := len(EncodeMessage(reply)); n > amplification*size {
			t.Errorf("answer of %d bytes to a %d-byte plaintext Syn from a stranger", n, size)
		}
	} else if b.Stats().RepliesCapped != 1 {
		t.Errorf("no answer, RepliesCapped = %d", b.Stats().RepliesCapped)
	}
	// Now known at that address (direct contact): no longer bounded.
	full := b.Step(t0, Inbound{From: id(9).Addr, Size: size}, wire(t, stranger.CreateSyn(t0))).Reply
	if full == nil || len(EncodeMessage(full)) <= amplification*size {
		t.Errorf("a known sender's answer is still bounded (%v)", full != nil)
	}
	// A Syn naming the known sender but from another address is bounded.
	spoofed := b.Step(t0, Inbound{From: id(66).Addr, Size: size}, wire(t, stranger.CreateSyn(t0))).Reply
	if spoofed != nil && len(EncodeMessage(spoofed)) > amplification*size {
		t.Error("a Syn naming a known sender from another address got an unbounded answer")
	}

	// A padded first contact gets a useful answer within the bound.
	stranger.padSyns = true
	padded := stranger.CreateSyn(t0)
	psize := len(EncodeMessage(padded))
	if psize < padTo {
		t.Fatalf("first-contact Syn of %d bytes, want padding to %d", psize, padTo)
	}
	fresh := crowd(t, 3, 200, MaxDatagramSize)
	reply := fresh.Step(t0, Inbound{From: id(9).Addr, Size: psize}, wire(t, padded)).Reply
	if reply == nil {
		t.Fatal("no answer to a padded first contact")
	}
	if n := len(EncodeMessage(reply)); n > amplification*psize {
		t.Errorf("answer of %d bytes to a %d-byte padded Syn", n, psize)
	}
}

// A datagram of protocol version 0 (upstream, or chitchat-go before v1) is
// refused with an error that says so.
func TestVersionZeroIsRefused(t *testing.T) {
	b := EncodeMessage(&Syn{ClusterID: "c"})
	b[2] = 0
	_, err := DecodeMessage(b)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("DecodeMessage(v0) = %v, want ErrVersion", err)
	}
}

// Over time, every node's heartbeat reaches every other through partial
// digests: 60 engines at 1,200-byte datagrams, started together with one
// seed, everyone sees everyone live.
func TestPartialDigestsKeepEveryoneLive(t *testing.T) {
	heavy(t)
	const n = 60
	var es []*Engine
	for i := range n {
		cfg := forTest(uint16(100 + i))
		cfg.MaxDatagramSize = 1200
		cfg.FailureDetector.InitialInterval = time.Second
		es = append(es, newEngine(t, cfg))
	}
	now := t0
	r := testRand(t, 60)
	for round := range 30 {
		now = now.Add(time.Second)
		for _, e := range es {
			rd := e.Tick(now)
			targets := rd.Targets
			if round == 0 {
				targets = append(targets, es[0].Self().Addr)
			}
			for _, addr := range targets {
				for _, peer := range es {
					if peer.Self().Addr == addr && peer != e {
						exchange(t, now, e, peer, rd.Syn)
					}
				}
			}
		}
		_ = r
	}
	for _, e := range es {
		if got := len(e.LiveNodes()); got != n {
			t.Errorf("%v sees %d live nodes, want %d", e.Self(), got, n)
		}
	}
}

// exchange delivers syn from a to b and runs the rest of the handshake, as
// direct contacts.
func exchange(t *testing.T, now time.Time, a, b *Engine, syn *Syn) {
	t.Helper()
	out := b.Step(now, Inbound{From: a.Self().Addr, Authentic: true}, wire(t, syn))
	if out.Reply == nil {
		return
	}
	out = a.Step(now, Inbound{From: b.Self().Addr, Authentic: true}, wire(t, out.Reply))
	if out.Reply != nil {
		b.Step(now, Inbound{From: a.Self().Addr, Authentic: true}, wire(t, out.Reply))
	}
}
