package chitchat

import (
	"testing"
	"time"
)

// NodeState.aside holds the left time while a node is left and a death
// notice's heartbeat otherwise (933efbb). A forged leave, refuted (the
// owner's reset drops the key from our view), must bring the node back
// with no heartbeat muted: neither the notice's heartbeat from before the
// leave nor the left time (Unix nanoseconds, about 2^60) read as one. A
// notice that comes while the node is left is ignored.
func TestHostile8LeaveAndNoticeShareAside(t *testing.T) {
	for _, order := range []string{"notice, then leave", "leave, then notice"} {
		t.Run(order, func(t *testing.T) {
			p := livePushNet(t, 4, nil)
			e, y, x := p.engines[0], p.engines[1], p.engines[3]
			ns := e.node(x.Self())
			hb, view := ns.heartbeat, ns.maxVersion
			now := p.now
			notice := func() {
				e.Step(now, Inbound{From: attacker}, wire(t, hostile8Dead(x.Self(), 1<<50)))
			}
			leave := func() {
				e.Step(now, Inbound{From: attacker}, wire(t, &Ack{Delta: buildDelta([]NodeDelta{{ID: x.Self(),
					FromVersionExcluded: view, MaxVersion: view + 1, KeyValues: []KeyValueMutation{kv(LeftKey, "", view+1, StatusSet)}}})}))
				if !ns.left {
					t.Fatal("the forged leave was not taken: the test attacks nothing")
				}
			}
			if order == "notice, then leave" {
				notice()
				if ns.deathHeartbeat() != 1<<50 {
					t.Fatalf("death heartbeat %d after the notice, want 2^50", ns.deathHeartbeat())
				}
				leave()
			} else {
				leave()
				notice()
				if ns.deathHeartbeat() != 0 || ns.deathHeard {
					t.Fatalf("a notice about a left node was noted: death heartbeat %d, deathHeard %v", ns.deathHeartbeat(), ns.deathHeard)
				}
			}
			if got := ns.leftTime(); !got.Equal(now) {
				t.Fatalf("left time %v, want %v", got, now)
			}
			// The owner's refutation: a reset of our view, without the key.
			now = now.Add(time.Second)
			gc := view + 2
			e.Step(now, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, &Ack{Delta: Delta{Nodes: []NodeDelta{{ID: x.Self(), LastGCVersion: gc, MaxVersion: gc}}}}))
			if ns.left {
				t.Fatal("still left after the reset dropped the leave")
			}
			if ns.aside != 0 || ns.pastRises != 0 {
				t.Fatalf("aside %d, pastRises %d after the leave was undone, want 0: a stale value would mute x's rises", ns.aside, ns.pastRises)
			}
			// Hearsay from here on: a baseline (the reset zeroed our
			// heartbeat), then a rise a second. Every rise is life.
			// The first round is the baseline only.
			trace, dead := hostile8Watch(t, &now, e, y, ns, hb, 1, 30, 1, nil)
			if dead > 0 {
				t.Errorf("x not live %d of 29 s after its forged leave was undone, its heartbeat rising every second: %s", dead, trace)
			}
		})
	}
}
