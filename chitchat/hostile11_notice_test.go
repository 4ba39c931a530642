package chitchat

import (
	"net/netip"
	"testing"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// Hostile review 11: a key holder's death notices about a live node, sent
// to every observer but the node (a push whose tree leaves it out: the
// node never refutes), every round.

// hostile11Notices returns a forger's turn that sends every engine of l but
// x and from a death notice about x naming the heartbeat it holds plus one
// (the freshest claim a forger can make without knowing x's own), as the
// member from (Authentic: relayed by a member).
func hostile11Notices(t *testing.T, l *hostile10Net, x, from *Engine) func() {
	in := Inbound{From: from.Self().Addr, Authentic: true}
	return func() {
		for _, e := range l.engines {
			if e == x || e == from {
				continue
			}
			e.Step(l.now, in, wire(t, hostile8Dead(x.Self(), e.node(x.Self()).heartbeat+1)))
		}
	}
}

// A notice that comes while an answered confirmation of the same node
// waits to be dropped (at the next round) is confirmed too: the next round
// asks the node. It was ignored (confirm saw the node already being
// confirmed), so the notice waited for the observer's phi and applied
// unasked once phi passed half the threshold: with such notices every
// round, the node's only news at an observer that hears of it rarely came
// from every other round's probe, and phi got there.
func TestHostile11NoticeAfterAnAnswerIsConfirmed(t *testing.T) {
	l := hostile10NewNet(t, 12, 0, 1)
	e, x := l.engines[0], l.engines[6]
	notice := func() {
		in := Inbound{From: l.engines[2].Self().Addr, Authentic: true}
		e.Step(l.now, in, wire(t, hostile8Dead(x.Self(), e.node(x.Self()).heartbeat+1)))
	}
	asked := func() int { return l.syns[[2]netip.AddrPort{e.Self().Addr, x.Self().Addr}] }
	notice()
	before := asked()
	l.round() // e asks x; x answers
	if asked() != before+1 {
		t.Fatalf("e sent x %d Syns in the round after a notice, want 1 (the probe)", asked()-before)
	}
	if len(e.confirming) != 1 || !e.confirming[0].answered {
		t.Fatalf("after x answered, e's confirmations are %+v, want one, answered", e.confirming)
	}
	notice() // a new notice, before the answered confirmation is dropped
	if !e.node(x.Self()).deathHeard {
		t.Fatal("the second notice is not kept")
	}
	if len(e.confirming) != 1 || e.confirming[0].answered || e.confirming[0].asked != 0 || !e.confirming[0].notice {
		t.Fatalf("after the second notice, e's confirmations are %+v, want one, new (not answered, not asked)", e.confirming)
	}
	l.round()
	if len(e.confirming) != 1 || e.confirming[0].asked != 1 {
		t.Errorf("after the round, e's confirmations are %+v, want one, asked once", e.confirming)
	}
	if !isLive(e, x.Self()) {
		t.Error("x is dead at e")
	}
}

// End to end, at a size where an observer hears of a given node rarely
// (one bucket of about four nodes per Syn, 120 nodes): the forger's notice
// every round, to all but x. Before the fix x died at 100 of the 118 other
// observers within 40 rounds (124 false deaths); now never. The cost, the
// flood a key holder can cause this way: one Syn to x per observer and
// round (measured: 4,654 Syns to x in 40 rounds, 126 without the notices),
// the confirmations themselves.
func TestHostile11RepeatedNotices(t *testing.T) {
	if race.Enabled {
		// 22 s here, several minutes under the race detector; the
		// mechanism is covered there by the test above.
		t.Skip("120 nodes for 90 rounds: too slow under the race detector")
	}
	const n = 120
	l := hostile10NewNet(t, n, 0, 1)
	x, forger := l.engines[n/2], l.engines[2]
	for range 50 {
		l.round()
	}
	before := l.synsTo[x.Self().Addr]
	send := hostile11Notices(t, l, x, forger)
	send()
	l.afterTick = func(o *Engine) {
		if o == l.engines[0] {
			send()
		}
	}
	for range 40 {
		l.round()
	}
	syns := l.synsTo[x.Self().Addr] - before
	t.Logf("%d Syns to x in 40 rounds of notices", syns)
	if l.deaths > 0 {
		t.Errorf("%d false deaths (x dead at %d observers)", l.deaths, len(l.pairs))
	}
	// One probe per observer and round, plus x's usual share of targets.
	if max := 40 * (n - 2 + 4); syns > max {
		t.Errorf("%d Syns to x in 40 rounds, want at most %d (one probe per observer and round)", syns, max)
	}
}

// Restarting an answered confirmation keeps its kind: a forger's notices
// about the nodes we monitor, each answered, restarted as kept notices,
// took the confirmations of kept notices past confirmMax (7 with our 3
// own beside 4 notices).
func TestHostile11RestartKeepsTheBound(t *testing.T) {
	l := hostile10NewNet(t, 16, 0, 1)
	e := l.engines[0]
	in := Inbound{From: l.engines[2].Self().Addr, Authentic: true}
	notice := func(ns *NodeState) {
		e.Step(l.now, in, wire(t, hostile8Dead(*ns.id, ns.heartbeat+1)))
	}
	for range 3 { // e.watched is set at the liveness updates
		l.round()
	}
	e.confirming = nil
	// Our own suspicions of the nodes we monitor, answered.
	for _, w := range e.watched {
		if w != nil {
			e.confirm(w, false)
			e.contacted(w, l.now, true)
		}
	}
	own := len(e.confirming)
	if own == 0 {
		t.Fatal("e monitors no node: the test attacks nothing")
	}
	// Kept notices about other nodes, up to the bound.
	for _, ns := range ringFrom(e)[monitorCount : monitorCount+confirmMax+2] {
		notice(ns)
	}
	// Notices about the monitored nodes, whose confirmations are answered.
	for _, w := range e.watched {
		if w != nil {
			notice(w)
		}
	}
	kept := 0
	for _, c := range e.confirming {
		if c.notice {
			kept++
		}
	}
	if kept > confirmMax || len(e.confirming) > confirmMax+own {
		t.Errorf("%d confirmations, %d of kept notices; want at most %d kept, %d in all", len(e.confirming), kept, confirmMax, confirmMax+own)
	}
}
