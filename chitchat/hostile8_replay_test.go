package chitchat

import (
	"testing"
	"time"
)

// A death notice replayed after its node came back (our heartbeat for it
// past the notice's) does nothing: not noted (no heartbeat muted), not
// kept, the node stays live. Byte for byte the push is a duplicate; with
// another duty it is not, and still does nothing. After a reset of our
// view (heartbeat 0) the replay is noted, but the next heartbeat is a
// baseline that drops the kept notice, and the rises after it, above the
// notice's heartbeat, are life.
func TestHostile8ReplayedDeathNotice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reDuty  bool
		reset   bool
		noticed bool // the replay is noted (and harmless)
	}{
		{"byte for byte", false, false, false},
		{"another duty", true, false, false},
		{"after a reset", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := livePushNet(t, 4, nil)
			e, y, x := p.engines[0], p.engines[1], p.engines[3]
			ns := e.node(x.Self())
			hb := ns.heartbeat
			// x falls silent; past half the threshold an honest notice
			// naming our heartbeat applies at once.
			now := p.now.Add(6 * time.Second)
			old := hostile8Dead(x.Self(), hb)
			e.Step(now, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, old))
			if isLive(e, x.Self()) {
				t.Fatal("the notice about a silent node was not applied")
			}
			// x comes back: its heartbeat rises past the notice's.
			for r := uint64(1); r <= 3; r++ {
				now = now.Add(time.Second)
				hostile8Hearsay(t, now, e, y, ns, hb+r)
				e.UpdateLiveness(now)
			}
			if !isLive(e, x.Self()) || ns.deathHeartbeat() != 0 {
				t.Fatalf("live %v, death heartbeat %d after rises past the notice's: want live, 0", isLive(e, x.Self()), ns.deathHeartbeat())
			}
			if tc.reset {
				gc := max(ns.maxVersion, ns.lastGCVersion) + 1
				e.Step(now, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, &Ack{Delta: Delta{Nodes: []NodeDelta{{ID: x.Self(), LastGCVersion: gc, MaxVersion: gc}}}}))
				if ns.heartbeat != 0 {
					t.Fatalf("heartbeat %d after the reset, want 0", ns.heartbeat)
				}
			}
			replay := old
			if tc.reDuty {
				self := e.node(e.Self()).ref
				replay = &Push{ClusterID: old.ClusterID, Range: &RingRange{After: self, Upto: self}, Notices: old.Notices}
			}
			e.Step(now, Inbound{From: attacker}, wire(t, replay))
			if noted := ns.deathHeartbeat() != 0; noted != tc.noticed || (!tc.noticed && ns.deathHeard) {
				t.Fatalf("after the replay: death heartbeat %d, deathHeard %v; want noted %v", ns.deathHeartbeat(), ns.deathHeard, tc.noticed)
			}
			// Rises a second, from x's heartbeat on (the first a baseline
			// after a reset): live throughout.
			trace, dead := hostile8Watch(t, &now, e, y, ns, hb, 4, 30, 0, nil)
			if dead > 0 {
				t.Errorf("x dead %d of 27 s after a replayed death notice, its heartbeat rising every second: %s", dead, trace)
			}
		})
	}
}
