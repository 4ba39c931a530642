package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Hostile review of corroborated suspicion (5d87f7b): what forged denials
// can do, compared with what the same attacker could do before, a forged
// death notice.

// hostileHost is an address that is no member's: a host outside the
// cluster that sends from its own address (no spoofing needed).
var hostileHost = netip.MustParseAddrPort("10.66.0.1:7000")

// inventedDeniers returns n sender IDs, all at addr, whose refs fall in n
// distinct denial groups: names are free, so one host speaks "from its
// own address" for as many groups as it likes.
func inventedDeniers(t *testing.T, addr netip.AddrPort, n int) []NodeID {
	t.Helper()
	var ids []NodeID
	seen := map[uint64]bool{}
	for k := 0; len(ids) < n && k < 1000; k++ {
		id := NodeID{Name: fmt.Sprintf("ghost-%d", k), Generation: 1, Addr: addr}
		if g := nodeRef(id) >> 61; !seen[g] {
			seen[g] = true
			ids = append(ids, id)
		}
	}
	if len(ids) < n {
		t.Fatalf("found %d denial groups only", len(ids))
	}
	return ids
}

// forgedDenial sends e a Syn from sender, arriving from addr, that names x
// with the heartbeat e holds of it.
func forgedDenial(t *testing.T, e *Engine, x NodeID, sender NodeID, from netip.AddrPort, authentic bool, now time.Time) {
	t.Helper()
	syn := &Syn{ClusterID: "default-cluster", Sender: sender, Digest: Digest{
		{ID: sender, NodeDigest: NodeDigest{Heartbeat: 1}},
		{ID: x, NodeDigest: NodeDigest{Heartbeat: e.node(x).heartbeat, MaxVersion: e.node(x).maxVersion}},
	}.normalize()}
	e.Step(now, Inbound{From: from, Authentic: authentic, Size: 1200}, wire(t, syn))
}

// forgedNotice sends e a push, arriving from addr, with a death notice of
// x at the heartbeat e holds of it.
func forgedNotice(t *testing.T, e *Engine, x NodeID, from netip.AddrPort, authentic bool, now time.Time) {
	t.Helper()
	push := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x, Heartbeat: e.node(x).heartbeat}}}
	e.Step(now, Inbound{From: from, Authentic: authentic, Size: 100}, wire(t, push))
}

// The claim of 5d87f7b: a forger gains nothing from denials that it lacks
// already, since one forged death notice makes a node dead here once our
// phi is past half the threshold. For each attacker (a host outside the
// cluster that invents three senders at its own address, a plaintext
// spoofer of three members' addresses, a key holder claiming three
// members' addresses) and each moment (past the floor; before it), the
// denials kill the victim only where the same attacker's single notice
// does. The first attacker shows that "a sender speaking from its own
// address" bounds nothing: names, hence groups, are the sender's choice.
// If death notices are ever restricted (to members, to authenticated
// senders), this test fails for the attackers the restriction stops, and
// denials must be restricted alike.
func TestHostile7ForgedDenialsNeverBeatAForgedNotice(t *testing.T) {
	type attacker struct {
		name string
		// senders returns the three deniers and the addresses they speak
		// from; notice is the address the same attacker's notice comes from.
		senders   func(t *testing.T, p *pushNet, e, x *Engine) ([]NodeID, []netip.AddrPort)
		notice    func(p *pushNet) netip.AddrPort
		authentic bool
	}
	members := func(t *testing.T, p *pushNet, e, x *Engine) ([]NodeID, []netip.AddrPort) {
		ss, _ := groupSenders(t, p, e, x, 3)
		var ids []NodeID
		var from []netip.AddrPort
		for _, s := range ss {
			ids = append(ids, s.Self())
			from = append(from, s.Self().Addr)
		}
		return ids, from
	}
	attackers := []attacker{
		{"one outside host, invented senders at its address", func(t *testing.T, _ *pushNet, _, _ *Engine) ([]NodeID, []netip.AddrPort) {
			ids := inventedDeniers(t, hostileHost, 3)
			return ids, []netip.AddrPort{hostileHost, hostileHost, hostileHost}
		}, func(*pushNet) netip.AddrPort { return hostileHost }, false},
		{"plaintext spoofer of three members", members, func(p *pushNet) netip.AddrPort { return p.engines[1].Self().Addr }, false},
		{"key holder claiming three members", members, func(p *pushNet) netip.AddrPort { return p.engines[1].Self().Addr }, true},
	}
	moments := []struct {
		name string
		// net returns the net, observer, victim and the moment of the
		// attack, the victim being our suspect then.
		net        func(t *testing.T) (*pushNet, *Engine, *Engine, time.Time)
		wantDenied bool // the denials kill
	}{
		{"past the floor", func(t *testing.T) (*pushNet, *Engine, *Engine, time.Time) {
			return corroborationNet(t)
		}, true},
		{"before the floor", func(t *testing.T) (*pushNet, *Engine, *Engine, time.Time) {
			p := livePushNet(t, 12, nil)
			e, x := p.engines[0], p.engines[11]
			later := p.now.Add(5500 * time.Millisecond)
			e.UpdateLiveness(later)
			if !e.node(x.Self()).suspect {
				t.Fatal("x is not a suspect")
			}
			return p, e, x, later
		}, false},
	}
	for _, m := range moments {
		for _, a := range attackers {
			t.Run(m.name+"/"+a.name, func(t *testing.T) {
				p, e, x, at := m.net(t)
				ids, from := a.senders(t, p, e, x)
				for k := range ids {
					forgedDenial(t, e, x.Self(), ids[k], from[k], a.authentic, at)
				}
				e.Tick(at.Add(100 * time.Millisecond))
				denied := !isLive(e, x.Self())

				p, e, x, at = m.net(t)
				forgedNotice(t, e, x.Self(), a.notice(p), a.authentic, at)
				e.Tick(at.Add(100 * time.Millisecond))
				noticed := !isLive(e, x.Self())

				if denied != m.wantDenied {
					t.Errorf("dead after forged denials = %v, want %v", denied, m.wantDenied)
				}
				if denied && !noticed {
					t.Errorf("forged denials killed the victim, a forged notice from the same attacker did not: a new power")
				}
				if !noticed {
					t.Errorf("a forged notice no longer kills a suspect: the comparison this test makes is void")
				}
			})
		}
	}
}

// Denials received while the node is not our suspect leave no trace: three
// groups naming it with our heartbeat just after a rise, then the
// suspicion past the floor, and it is still live.
func TestHostile7DenialsBeforeTheSuspicionDoNotCount(t *testing.T) {
	p := livePushNet(t, 12, func(c *Config) { c.GossipInterval = 250 * time.Millisecond })
	e, x := p.engines[0], p.engines[11]
	e.UpdateLiveness(p.now)
	if e.node(x.Self()).suspect {
		t.Fatal("x is a suspect at once")
	}
	senders, _ := groupSenders(t, p, e, x, 3)
	for _, s := range senders {
		denySyn(t, e, s, x, p.now, e.node(x.Self()).heartbeat)
	}
	if d := e.node(x.Self()).denials; d != 0 {
		t.Errorf("denials = %08b while x is no suspect, want none", d)
	}
	later := p.now.Add(5500 * time.Millisecond)
	e.UpdateLiveness(later)
	if !e.node(x.Self()).suspect {
		t.Fatal("x is not a suspect later")
	}
	e.UpdateLiveness(later.Add(100 * time.Millisecond))
	if !isLive(e, x.Self()) {
		t.Fatal("x dead on denials received before it was a suspect")
	}
}

// A suspicion that a rise ended leaves no denials to the next one: two
// groups in the first suspicion and one in the second are not three.
func TestHostile7DenialsDoNotOutliveTheSuspicion(t *testing.T) {
	p, e, x, later := corroborationNet(t)
	senders, _ := groupSenders(t, p, e, x, 3)
	denySyn(t, e, senders[0], x, later, e.node(x.Self()).heartbeat)
	denySyn(t, e, senders[1], x, later, e.node(x.Self()).heartbeat)
	// x speaks to e (a rise), then falls silent again.
	syn := x.CreateSyn(later)
	e.Step(later, Inbound{From: x.Self().Addr, Authentic: true}, wire(t, syn))
	if d := e.node(x.Self()).denials; d != 0 {
		t.Fatalf("denials = %08b after a rise, want none", d)
	}
	// The next suspicion, past the floor again: the first moment, by
	// half seconds, at which phi is between half the threshold and the
	// threshold.
	thr := e.cfg.FailureDetector.PhiThreshold
	again := later
	for range 60 {
		again = again.Add(500 * time.Millisecond)
		if phi, _ := e.fd.Phi(e.node(x.Self()).slot, again); phi > thr/2 {
			break
		}
	}
	if phi, _ := e.fd.Phi(e.node(x.Self()).slot, again); phi <= thr/2 || phi > thr || again.Sub(later) < 2*time.Second {
		t.Fatalf("phi %.1f at %v after the rise: want between half the threshold and the threshold, past the floor", phi, again.Sub(later))
	}
	e.UpdateLiveness(again)
	if !e.node(x.Self()).suspect || !isLive(e, x.Self()) {
		t.Fatalf("x suspect %v, live %v later; want both", e.node(x.Self()).suspect, isLive(e, x.Self()))
	}
	denySyn(t, e, senders[2], x, again, e.node(x.Self()).heartbeat)
	e.UpdateLiveness(again.Add(100 * time.Millisecond))
	if !isLive(e, x.Self()) {
		t.Fatalf("x dead on one group's denial in this suspicion (denials %08b)", e.node(x.Self()).denials)
	}
}

// A corroborated verdict is announced: three denials make an honest node
// push a death notice down the whole ring, which members forward, while a
// plaintext notice from an address that is no member's is applied and not
// forwarded (NotForwarded). That is no new reach for an outside host: one
// Syn from its own address makes it a member here, and its own notice is
// then forwarded down the ring.
func TestHostile7OutsiderNoticeIsForwardedAfterOneSyn(t *testing.T) {
	_, e, x, at := corroborationNet(t)
	ghost := inventedDeniers(t, hostileHost, 1)[0]
	notice := func() Output {
		push := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x.Self(), Heartbeat: e.node(x.Self()).heartbeat}},
			Range: &RingRange{After: ringBound(0), Upto: ringBound(^uint64(0) >> 1)}}
		return e.Step(at, Inbound{From: hostileHost, Size: 100}, wire(t, push))
	}
	before := e.push.stats.NotForwarded
	if out := notice(); announcesDeath(out.Pushes, x.Self()) || e.push.stats.NotForwarded != before+1 {
		t.Fatalf("a stranger's notice was forwarded (%d pushes), or not counted as NotForwarded", len(out.Pushes))
	}
	// Back to a suspect (the notice killed it): a fresh net, one Syn first.
	_, e, x, at = corroborationNet(t)
	syn := &Syn{ClusterID: "default-cluster", Sender: ghost, Digest: Digest{{ID: ghost, NodeDigest: NodeDigest{Heartbeat: 1}}}}
	e.Step(at, Inbound{From: hostileHost, Size: 1200}, wire(t, syn))
	if !e.memberAt(hostileHost) {
		t.Fatal("one Syn from its own address does not make the host a member")
	}
	if out := notice(); !announcesDeath(out.Pushes, x.Self()) {
		t.Fatalf("the host's notice, after one Syn, was not forwarded: %v", out.Pushes)
	}
}
