package chitchat

import (
	"testing"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// Hostile review 12: the kept window of a node under a forged leave
// (079714e). A key holder (or, without a keyring, anyone) can keep a live
// node left for as long as it forges the leave key again after each
// refutation (PROTOCOL.md §17.3). Once it stops, the node should be live
// again everywhere as soon as the last refutation arrives.

// The forger writes x's leave key at every observer after each round for
// 12 rounds, then stops. While x was left its rises were not reported, so
// the window kept was frozen at the leave: once the refutation came, x was
// judged on a heartbeat 12 s old, live but past half the threshold at
// some observers (then dead at their next round, their death notices
// pushed), dead at once at others, and settling held back the hearsay
// rises that followed: 26 observer-rounds not live after the forger
// stopped, and 3 false deaths (live, then dead), at 20 nodes (6 and 0 at
// 12). Now a left node whose window is judgeable keeps it current with the
// rises it shows: none, and none.
func TestHostile12LongForgedLeaveFrozenWindow(t *testing.T) {
	n, forged := 20, 12
	if race.Enabled {
		n = 12
	}
	l := hostile10NewNet(t, n, 0, 1)
	x := l.engines[n/2]
	for range 15 {
		l.round()
	}
	for range forged {
		for _, e := range l.engines {
			if e != x && !e.node(x.Self()).left {
				hostile11Leave(t, l, e, x)
			}
		}
		l.round()
	}
	l.deadRounds, l.deaths = 0, 0
	clear(l.pairs)
	for range 30 {
		l.round()
	}
	t.Logf("after the forger stopped: x not live for %d observer-rounds, %d deaths, at %d observers", l.deadRounds, l.deaths, len(l.pairs))
	if l.seenDead(x) > 0 {
		t.Fatalf("x still not live at %d observers 30 rounds after the forger stopped", l.seenDead(x))
	}
	// The last forgery was refuted within the round that followed it,
	// before the forger stopped: x is not left anywhere after, and its
	// window, kept current, judges it live.
	if l.deadRounds > 0 || l.deaths > 0 {
		t.Errorf("after the forger stopped, x not live for %d observer-rounds, %d deaths; want 0, 0", l.deadRounds, l.deaths)
	}
}

// The other side of keeping a left node's window current: a node dead at
// the leave has no window to keep (its death reset it), and rises it shows
// while left are not reported. Otherwise a forger could revive a dead
// node, which settling guards against hearsay rises (monitor.go): forge
// its leave, tell a rise or two of it (or let its last heartbeats, still
// spreading, do it), and undo the leave with a reset that drops the key
// (a key holder can write one; so can anyone without a keyring): judged at
// once on those rises, the node was live again.
func TestHostile12ForgedLeaveDoesNotReviveTheDead(t *testing.T) {
	n := 12
	l := hostile10NewNet(t, n, 0, 1)
	e, y, x := l.engines[0], l.engines[1], l.engines[n/2]
	for range 10 {
		l.round()
	}
	l.down[x] = true
	for range 20 {
		l.round()
	}
	if isLive(e, x.Self()) {
		t.Fatal("x still live at e 20 rounds after it went down: the test attacks nothing")
	}
	ns := e.node(x.Self())
	hostile11Leave(t, l, e, x)
	for range 3 {
		hostile11Inflate(t, l, e, x, 1, false)
	}
	gc := ns.maxVersion + 1
	e.Step(l.now, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, &Ack{Delta: Delta{Nodes: []NodeDelta{{ID: x.Self(), LastGCVersion: gc, MaxVersion: gc}}}}))
	if ns.left {
		t.Fatal("still left after the reset dropped the leave: the test attacks nothing")
	}
	if isLive(e, x.Self()) {
		t.Error("x, down, is live at e after a forged leave, three hearsay rises, and the leave undone")
	}
	l.round()
	if isLive(e, x.Self()) {
		t.Error("x, down, is live at e a round after its forged leave was undone")
	}
}
