package chitchat

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// Hostile review 11: a stranger's hearsay heartbeat above the real one.
// Anyone may tell an observer a digest entry naming a node's heartbeat
// far above what the node has reached (acceptable() allows up to 2^62);
// the node refutes it once it sees it. Meanwhile the node's own answers
// are no rise there. Confirmation (confirm.go) counted only rises as
// answers, so the forged entry turned every answer into silence.

// hostile11Inflate has e hear, from a stranger, a digest entry naming x's
// heartbeat as e holds it plus jump, and, if notice, a death notice naming
// that heartbeat.
func hostile11Inflate(t *testing.T, l *hostile10Net, e, x *Engine, jump uint64, notice bool) {
	t.Helper()
	in := Inbound{From: attacker}
	hb := e.node(x.Self()).heartbeat + jump
	e.Step(l.now, in, wire(t, &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: x.Self(), NodeDigest: NodeDigest{Heartbeat: hb}}}}))
	if notice {
		e.Step(l.now, in, wire(t, hostile8Dead(x.Self(), hb)))
	}
}

// The entry and a death notice naming its heartbeat, once or after every
// round of e's, to one observer e: x is never dead at e. Before the fixes,
// 20 nodes, 40 rounds: once (jump 2^40), dead for 5 rounds at e (its
// answers to e's probes were no rise; it saw the claim only once e had
// applied the notice and the claim had spread); every round, dead for 33
// (the forger's entry, told after e's Syn was built, stays ahead of x's
// refutation). Now x's word from its own address answers a probe whatever
// heartbeat it names (observeHeartbeat; without it the every-round cases
// fail), and the Syn that asks x shows it the claim
// (TestHostile11AskingSynShowsTheClaim). The cost: e asks x about once a
// round while the notices come (19 and 21 Syns in 40 rounds; 7 for one
// notice).
func TestHostile11InflatedHeartbeatDefeatsConfirmation(t *testing.T) {
	n, jumps := 20, []uint64{1000, 1 << 40}
	if race.Enabled {
		// 12 s for the four cases there: the large jump covers both fixes.
		n, jumps = 16, jumps[1:]
	}
	for _, every := range []bool{false, true} {
		for _, jump := range jumps {
			t.Run(fmt.Sprintf("every=%v/jump=%d", every, jump), func(t *testing.T) {
				l := hostile10NewNet(t, n, 0, 1)
				e := l.engines[0]
				x := l.opposite(e)
				hostile11Inflate(t, l, e, x, jump, true)
				if every {
					l.afterTick = func(o *Engine) {
						if o == e {
							hostile11Inflate(t, l, e, x, jump, true)
						}
					}
				}
				dead := l.roundsDead(e, x, 40)
				syns := l.syns[[2]netip.AddrPort{e.Self().Addr, x.Self().Addr}]
				t.Logf("x dead at e for %d of 40 rounds; e sent x %d Syns", dead, syns)
				if dead > 0 || l.deaths > 0 {
					t.Errorf("x dead at e for %d of 40 rounds (%d false deaths in all)", dead, l.deaths)
				}
				if max := 40 + 3; syns > max {
					t.Errorf("e sent x %d Syns in 40 rounds, want at most %d", syns, max)
				}
			})
		}
	}
}

// The entry alone, after every round of each of x's monitors: x is never
// dead. Before the fix (20 nodes, 40 rounds), each monitor found x silent
// (its Syns named heartbeats below the claim: no word), asked it, found
// its answers no rise either, and held it dead while the entries came: 3
// false deaths, 83 observer-rounds dead. The other observers took the
// monitors' notices to their own probes, which x answered.
func TestHostile11InflatedHeartbeatAtMonitors(t *testing.T) {
	n, jumps := 20, []uint64{1000, 1 << 30}
	if race.Enabled {
		n, jumps = 16, jumps[1:]
	}
	for _, jump := range jumps {
		t.Run(fmt.Sprintf("jump=%d", jump), func(t *testing.T) {
			l := hostile10NewNet(t, n, 0, 1)
			x := l.engines[n/2]
			for range 3 {
				l.round()
			}
			var monitors []*Engine
			for _, e := range l.engines {
				if e != x && slices.Contains(e.watched[:], e.node(x.Self())) {
					monitors = append(monitors, e)
				}
			}
			if len(monitors) != monitorCount {
				t.Fatalf("x has %d monitors, want %d", len(monitors), monitorCount)
			}
			l.afterTick = func(o *Engine) {
				if slices.Contains(monitors, o) {
					hostile11Inflate(t, l, o, x, jump, false)
				}
			}
			for range 40 {
				l.round()
			}
			t.Logf("%d false deaths, %d observer-rounds dead, x dead at %d now", l.deaths, l.deadRounds, l.seenDead(x))
			if l.deaths > 0 {
				t.Errorf("%d false deaths (%d observer-rounds dead; x dead at %d observers now)", l.deaths, l.deadRounds, l.seenDead(x))
			}
		})
	}
}

// One entry and notice, to e: the Syn with which e asks x shows x the
// claim, x refutes it in its answer (its heartbeat jumps past it) and is
// never dead at e. Before the fix x saw the claim only once it had spread
// from e through others: x's answers, no rise, ended the confirmation
// (observeHeartbeat), but the kept notice still applied once e's phi of x,
// frozen at the claim, passed half the threshold: dead at e for 8 of 40
// rounds at 30 nodes (9 before either fix).
func TestHostile11AskingSynShowsTheClaim(t *testing.T) {
	n := 30
	if race.Enabled {
		n = 16
	}
	l := hostile10NewNet(t, n, 0, 1)
	e := l.engines[0]
	x := l.opposite(e)
	hostile11Inflate(t, l, e, x, 1<<40, true)
	claim := e.node(x.Self()).heartbeat
	l.round()
	if got := x.selfState().heartbeat; got <= claim {
		t.Errorf("after e asked x, x's heartbeat is %d, want above the claim e holds, %d", got, claim)
	}
	dead := l.roundsDead(e, x, 40)
	if dead > 0 || l.deaths > 0 {
		t.Errorf("x dead at e for %d of 40 rounds (%d false deaths in all)", dead, l.deaths)
	}
}

// x found dead at e for a moment (a key holder's notice, a blip of loss:
// here made so by hand), then one stranger's entry at e: x is dead at e
// for one round, as without the entry (e's next round asks x,
// probeTarget, and its answer revives it). Before the fix, 20 nodes: dead
// for 9 of 40 rounds (x's answer to the probe was no rise, and it saw the
// claim only once the claim had spread). Now the probe's Syn lists x
// (synDigest): x refutes the claim in its answer, a rise.
//
// Not fixed: the entry after every round of e's, told after e's Syn is
// built, stays ahead of x's refutation, and x stays dead at e until the
// settling time ends and a forged rise is life (25 of 40 rounds here).
// Taking x's own word as life whatever heartbeat it names would end it,
// but cannot be told from a restart under the same id, which must stay
// dead until its heartbeat overtakes the old one's
// (TestT76_NodeGoesFromLiveToDownToLive, PROTOCOL.md §2.1).
func TestHostile11InflatedHeartbeatKeepsDead(t *testing.T) {
	n := 20
	if race.Enabled {
		n = 16
	}
	l := hostile10NewNet(t, n, 0, 1)
	e := l.engines[0]
	x := l.opposite(e)
	for range 3 {
		l.round()
	}
	ns := e.node(x.Self())
	e.dieByNotice(ns, l.now)
	e.mirror(ns, l.now)
	if isLive(e, x.Self()) {
		t.Fatal("x is live at e after its death there")
	}
	hostile11Inflate(t, l, e, x, 1<<30, false)
	dead := l.roundsDead(e, x, 40)
	t.Logf("x dead at e for %d of 40 rounds", dead)
	if dead > 1 {
		t.Errorf("x dead at e for %d of 40 rounds, want 1 at most (its answer to e's probe revives it)", dead)
	}
}
