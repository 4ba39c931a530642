package chitchat

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hostile13View applies the membership events recorded since *cursor to
// view, as Server.Events does, and returns the IDs view holds live.
func hostile13View(e *Engine, cursor *uint64, view map[NodeID]bool) []NodeID {
	evs, c := e.eventsSince(*cursor, false, nil)
	*cursor = c
	for _, ev := range evs {
		switch ev.Kind {
		case EventJoined, EventUpdated:
			view[ev.ID] = true
		default:
			delete(view, ev.ID)
		}
	}
	return slices.SortedFunc(func(yield func(NodeID) bool) {
		for id := range view {
			if !yield(id) {
				return
			}
		}
	}, NodeID.Compare)
}

// Hostile review 13: a live node removed between two publications of the
// live-nodes watch. The membership events recorded nothing about it: the
// ring matched nodes by state (a slot, at 9fea0d2 an identity pointer),
// and a node whose state was gone had no ID left to name. Server.Events'
// consumer held it live for good, while a consumer that fell behind and
// resynced got its death (eventsSince's resync compares by ID). Same at
// b2f154f and 9fea0d2; 9fea0d2's copies hold the ID, which the ring now
// compares by.
//
// The forger makes three invented nodes live at e (MaxNodes 5, with an
// honest node: full); a second honest node then talks to e directly,
// which evicts the oldest node never heard from directly (makeRoom's
// fourth choice), a live one. In the second case the forger then speaks
// for that node from its address (plaintext), which creates it again and
// evicts the next: the node back must be live for the consumer (once,
// not joined after its death), the next one gone.
func TestHostile13EvictedLiveNodeLeavesTheEvents(t *testing.T) {
	for _, back := range []bool{false, true} {
		t.Run(fmt.Sprintf("back=%v", back), func(t *testing.T) {
			cfg := forTest(100)
			cfg.FailureDetector.InitialInterval = time.Second
			cfg.Limits.MaxNodes = 5
			e := newEngine(t, cfg)
			now := t0
			e.Tick(now)
			_, cursor := e.eventsSince(0, true, nil)
			view := map[NodeID]bool{}
			var fakes []NodeID
			for i := range 3 {
				fakes = append(fakes, NodeID{Name: fmt.Sprintf("fake-%d", i), Generation: 1, Addr: hostile10Victim})
			}
			mention := func(hb uint64) {
				var d Digest
				for _, f := range fakes {
					d = append(d, DigestEntry{ID: f, NodeDigest: NodeDigest{Heartbeat: hb}})
				}
				e.Step(now, Inbound{From: attacker}, wire(t, &Syn{ClusterID: "default-cluster", Digest: d}))
			}
			mention(1)
			mention(2)
			h1, h2 := newEngine(t, forTest(101)), newEngine(t, forTest(102))
			e.Step(now, Inbound{From: h1.Self().Addr, Authentic: true}, wire(t, h1.CreateSyn(now)))
			now = now.Add(time.Second)
			e.Tick(now)
			if got, want := hostile13View(e, &cursor, view), append(slices.Clone(fakes), h1.Self()); !slices.Equal(got, want) {
				t.Fatalf("view after the forger's nodes went live = %v, want %v: the test attacks nothing", got, want)
			}

			e.Step(now, Inbound{From: h2.Self().Addr, Authentic: true}, wire(t, h2.CreateSyn(now)))
			if e.node(fakes[0]) != nil || e.node(h2.Self()) == nil {
				t.Fatalf("%v not evicted for %v: the test attacks nothing", fakes[0], h2.Self())
			}
			if back {
				syn := &Syn{ClusterID: "default-cluster", Digest: Digest{{ID: fakes[0], NodeDigest: NodeDigest{Heartbeat: 3}}}, Sender: fakes[0]}
				e.Step(now, Inbound{From: hostile10Victim}, wire(t, syn))
				if e.node(fakes[0]) == nil || e.node(fakes[1]) != nil {
					t.Fatalf("%v not back in place of %v: the test attacks nothing", fakes[0], fakes[1])
				}
			}
			now = now.Add(time.Second)
			e.Tick(now)
			want := slices.DeleteFunc(e.LiveNodes(), func(id NodeID) bool { return id == e.Self() })
			if back && !slices.Contains(want, fakes[0]) {
				t.Fatalf("%v back, not live: the test attacks nothing", fakes[0])
			}
			if diff := cmp.Diff(want, hostile13View(e, &cursor, view), cmpOpts); diff != "" {
				t.Errorf("live members after the events (-engine +events' consumer):\n%s", diff)
			}
		})
	}
}

// The events never name the self node: not its old identity either, once
// a claim it cannot outbid made it reincarnate between two publications
// (recordEvents matches by ID since hostile review 13, and the old self
// identity is in the last publication, not in the next).
func TestHostile13ReincarnationNamesNoSelf(t *testing.T) {
	cfg := forTest(100)
	cfg.FailureDetector.InitialInterval = time.Second
	e := newEngine(t, cfg)
	h := newEngine(t, forTest(101))
	now := t0
	e.Step(now, Inbound{From: h.Self().Addr, Authentic: true}, wire(t, h.CreateSyn(now)))
	e.Tick(now)
	_, cursor := e.eventsSince(0, true, nil)
	old := e.Self()
	e.reincarnate(now, refuteLimit)
	if e.Self() == old {
		t.Fatal("no reincarnation: the test attacks nothing")
	}
	now = now.Add(time.Second)
	e.Tick(now)
	_, live := e.LiveNodesWatch()
	if len(live) != 2 || live[0].ID() != e.Self() && live[1].ID() != e.Self() {
		t.Fatalf("watch after the reincarnation holds %d nodes, not the new self: the test attacks nothing", len(live))
	}
	evs, _ := e.eventsSince(cursor, false, nil)
	for _, ev := range evs {
		if ev.ID.Name == old.Name {
			t.Errorf("event %v about the self node (%v; old identity %v)", ev.Kind, ev.ID, old)
		}
	}
}
