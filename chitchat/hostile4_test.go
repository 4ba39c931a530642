package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Hostile review 4: the noderef op (a push names its origin by ref), 32-bit
// push ranges, two-way stream welcomes.

// equalDeltas (the writer-versus-hand-built check of the codec property)
// must tell a node named by one ref from a node named by another: both have
// the zero NodeID, and comparing IDs alone called them equal, so a writer
// that lost or mangled a ref passed.
func TestHostile4EqualDeltasComparesRefs(t *testing.T) {
	a := Delta{Nodes: []NodeDelta{{Ref: 1, MaxVersion: 3}}}
	b := Delta{Nodes: []NodeDelta{{Ref: 2, MaxVersion: 3}}}
	if equalDeltas(&a, &b) {
		t.Errorf("equalDeltas says deltas naming refs 1 and 2 are equal")
	}
	if !equalDeltas(&a, &a) {
		t.Errorf("equalDeltas says a delta differs from itself")
	}
}

// Spoofed Syns from addresses never heard from do not start streams at once
// (TestHostile3SpoofedSynDialsTheVictimAtOnce), but they still queue the
// victims for the next round (wantStream runs after observe made the
// marked sender known); the next message from a real member then returns
// every queued victim in Output.Streams at once: the rule "only a message
// from a sender heard from before starts streams at once" holds for the
// message, not for whom it dials. Up to immediateStreams member messages
// per gossip interval each release up to 16 victims, besides the round.
func TestHostile4MemberMessageReleasesSpoofedStreamsAtOnce(t *testing.T) {
	e := newEngine(t, forTest(1))
	for k := range 200 {
		if err := e.Set(fmt.Sprintf("key-%03d", k), "some value of the node"); err != nil {
			t.Fatal(err)
		}
	}
	member := newEngine(t, forTest(2))
	handshake(t, t0, member, e)
	now := t0.Add(time.Millisecond)
	victims := map[netip.AddrPort]bool{}
	for i := range 5 {
		victim := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 80}), uint16(80+i))
		victims[victim] = true
		syn := &Syn{ClusterID: e.cfg.ClusterID, Sender: NodeID{Name: "victim", Addr: victim},
			Digest: Digest{{ID: NodeID{Name: "victim", Addr: victim}, NodeDigest: NodeDigest{Heartbeat: 1}}}}
		if out := e.Step(now, Inbound{From: victim, Size: EncodedSize(syn)}, wire(t, syn)); len(out.Streams) > 0 {
			t.Fatalf("a spoofed Syn started streams at once: %v", out.Streams)
		}
	}
	if len(e.streams.wanted) == 0 {
		t.Fatalf("the spoofed Syns queued no stream (the test no longer reaches the case)")
	}
	syn := member.CreateSyn(now)
	out := e.Step(now, Inbound{From: member.Self().Addr, Size: EncodedSize(syn)}, wire(t, syn))
	var released []netip.AddrPort
	for _, a := range out.Streams {
		if victims[a] {
			released = append(released, a)
		}
	}
	if len(released) > 0 {
		t.Errorf("a Syn from member %v made the engine dial at once %v, queued by spoofed Syns from addresses never heard from", member.Self(), released)
	}
}

// Alive notices relayed by a member are evidence of life, but not direct
// contact with the nodes they name: a member that announces invented nodes
// until the table is full must not lock out an honest node that then
// contacts us itself (found by the adversary property once it forged
// pushes: the invented nodes were "heard", so nothing could be evicted
// while they looked live).
func TestHostile4RelayedNoticesAreNotDirectContact(t *testing.T) {
	cfg := forTest(1)
	cfg.Limits.MaxNodes = 6
	e := newEngine(t, cfg)
	member := NodeID{Name: "member", Generation: 1, Addr: netip.MustParseAddrPort("127.0.0.1:20001")}
	syn := &Syn{ClusterID: e.cfg.ClusterID, Sender: member, Digest: Digest{{ID: member, NodeDigest: NodeDigest{Heartbeat: 5}}}}
	e.Step(t0, Inbound{From: member.Addr, Size: EncodedSize(syn)}, wire(t, syn))
	if !e.memberAt(member.Addr) {
		t.Fatalf("the sender of a Syn from its own address is not a member")
	}
	push := &Push{ClusterID: e.cfg.ClusterID}
	for i := range 10 {
		push.Notices = append(push.Notices, Notice{Kind: NoticeAlive, Heartbeat: 3,
			ID: NodeID{Name: fmt.Sprintf("invented-%d", i), Generation: 1, Addr: netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), uint16(1000+i))}})
	}
	e.Step(t0, Inbound{From: member.Addr, Size: EncodedSize(push)}, wire(t, push))
	if n := len(e.states); n != cfg.Limits.MaxNodes {
		t.Fatalf("the table holds %d nodes after the member's notices, want it full (%d)", n, cfg.Limits.MaxNodes)
	}

	honest := NodeID{Name: "honest", Generation: 1, Addr: netip.MustParseAddrPort("127.0.0.1:20002")}
	syn = &Syn{ClusterID: e.cfg.ClusterID, Sender: honest, Digest: Digest{{ID: honest, NodeDigest: NodeDigest{Heartbeat: 2}}}}
	e.Step(t0.Add(time.Second), Inbound{From: honest.Addr, Size: EncodedSize(syn)}, wire(t, syn))
	if _, ok := e.lookup(honest); !ok {
		t.Errorf("an honest node contacting us itself was refused (NodesRefused %d): the member's invented nodes could not be evicted", e.Stats().NodesRefused)
	}
}
