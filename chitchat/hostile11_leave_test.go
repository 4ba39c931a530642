package chitchat

import (
	"testing"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// Forged leaves (hostile review 11). Anyone who can write a delta can
// write a node's leave key at the next version: the node refutes it at its
// next exchange with a holder, and the refutation spreads as the forgery
// did. Until it reaches an observer, the node is left there.

// hostile11Leave sends e, as a stranger, a delta writing x's leave key at
// the version after the one e holds.
func hostile11Leave(t *testing.T, l *hostile10Net, e, x *Engine) {
	t.Helper()
	view := e.node(x.Self()).maxVersion
	e.Step(l.now, Inbound{From: attacker}, wire(t, &Ack{Delta: buildDelta([]NodeDelta{{ID: x.Self(),
		FromVersionExcluded: view, MaxVersion: view + 1, KeyValues: []KeyValueMutation{kv(LeftKey, "", view+1, StatusSet)}}})}))
	if !e.node(x.Self()).left {
		t.Fatal("the forged leave was not taken: the test attacks nothing")
	}
}

// A refuted forged leave costs no more than the time the refutation takes
// to reach each observer. The leave took the node out of the failure
// detector's hands by forgetting its window, so once the refutation came
// the node was dead, judged on no heartbeat, until new ones came and,
// dead, settling held the hearsay ones back: 30 observer-rounds not live
// (12 observers) in 40 rounds of 20 nodes after one forged datagram. Now
// the window is kept and the node is judged on it as soon as the leave is
// gone: 4 (4 observers).
func TestHostile11ForgedLeaveUndone(t *testing.T) {
	n := 20
	if race.Enabled {
		n = 12
	}
	l := hostile10NewNet(t, n, 0, 1)
	e, x := l.engines[0], l.engines[n/2]
	for range 10 {
		l.round()
	}
	hostile11Leave(t, l, e, x)
	for range 40 {
		l.round()
	}
	t.Logf("x not live for %d observer-rounds of %d, %d observers", l.deadRounds, 40*(n-1), len(l.pairs))
	if !isLive(e, x.Self()) || l.seenDead(x) > 0 {
		t.Fatalf("x still not live at %d observers after 40 rounds", l.seenDead(x))
	}
	// One round per observer at most: from the forgery's arrival to the
	// refutation's.
	if max := n - 1; l.deadRounds > max {
		t.Errorf("x not live for %d observer-rounds after one forged leave, want at most %d", l.deadRounds, max)
	}
}
