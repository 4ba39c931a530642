package chitchat

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Confirmation while views are in flux, and nodes that answer oddly.

// A node that answers no Syn but gossips (its own rounds go out: a
// half-dead node, or a malicious one), and a node whose own Syns are all
// lost but that answers (a one-way filter): both speak to their monitors
// from their own address, one way or the other, within silentRounds, so
// neither is found dead anywhere, lossless. Measured: 0 false deaths in
// 100 rounds (20 nodes) for each.
func TestHostile10HalfDeadNodes(t *testing.T) {
	heavy(t)
	for _, how := range []string{"answers nobody", "its Syns lost"} {
		t.Run(how, func(t *testing.T) {
			l := hostile10NewNet(t, 20, 0, 1)
			x := l.engines[7]
			if how == "answers nobody" {
				l.mute[x] = true
			} else {
				l.unheard[x] = true
			}
			asked := 0
			for range 100 {
				l.round()
				for _, e := range l.engines {
					if slices.ContainsFunc(e.confirming, func(c confirmation) bool { return c.id == x.Self() }) {
						asked++
					}
				}
			}
			if l.deaths > 0 {
				t.Errorf("%d false deaths (%d observer-rounds); x seen dead by %d", l.deaths, l.deadRounds, l.seenDead(x))
			}
			t.Logf("confirmations of x in progress, observer-rounds: %d", asked)
		})
	}
}

// A node that restarts (a new generation at the same address) while a
// monitor confirms its old identity answers from the new one: the old
// identity is not answered for, and is found dead after the probes (it is
// dead); the new one is live everywhere. No Syn goes anywhere but the
// node's address.
func TestHostile10RestartDuringConfirmation(t *testing.T) {
	l := hostile10NewNet(t, 12, 0, 1)
	old := l.engines[5]
	oldID := old.Self()
	l.down[old] = true
	// Silent for silentRounds: its monitors start asking.
	asking := func() int {
		k := 0
		for _, e := range l.engines {
			if !l.down[e] && slices.ContainsFunc(e.confirming, func(c confirmation) bool { return c.id == oldID }) {
				k++
			}
		}
		return k
	}
	for r := 0; asking() == 0; r++ {
		if r > 3*silentRounds {
			t.Fatal("no monitor asks the silent node")
		}
		l.round()
	}
	cfg := forTest(uint16(100 + 5))
	cfg.ID.Generation = 2
	cfg.FailureDetector.InitialInterval = time.Second
	fresh := newEngine(t, cfg)
	fresh.tune = tuning{bucketTarget: 4, maxBuckets: 1}
	fresh.seeds = []netip.AddrPort{l.engines[0].Self().Addr}
	l.engines[5] = fresh
	l.byAddr[fresh.Self().Addr] = fresh
	for range 2*maxProbes + 4 {
		l.round()
	}
	for _, e := range l.engines {
		if e == fresh {
			continue
		}
		if isLive(e, oldID) {
			t.Errorf("%v holds the old identity live", e.Self())
		}
		if !isLive(e, fresh.Self()) {
			t.Errorf("%v does not hold the restarted node live", e.Self())
		}
	}
}

// A node under confirmation that is removed (garbage collected, evicted)
// leaves no dangling confirmation: the next round drops it and asks
// nobody for it. A death notice about ourselves is refuted, never
// confirmed.
func TestHostile10ConfirmationOfGoneAndSelf(t *testing.T) {
	l := hostile10NewNet(t, 12, 0, 1)
	e := l.engines[0]
	x := ringFrom(e)[6]
	member := Inbound{From: l.engines[1].Self().Addr, Authentic: true}
	e.Step(l.now, member, wire(t, &Push{ClusterID: "default-cluster", Notices: []Notice{
		{Kind: NoticeDead, ID: *x.id, Heartbeat: x.heartbeat},
		{Kind: NoticeDead, ID: e.Self(), Heartbeat: 1 << 40},
	}}))
	if !slices.ContainsFunc(e.confirming, func(c confirmation) bool { return c.id == *x.id }) {
		t.Fatal("the notice about x is not being confirmed")
	}
	if slices.ContainsFunc(e.confirming, func(c confirmation) bool { return c.id == e.Self() }) {
		t.Error("e confirms a notice about itself")
	}
	addr := x.id.Addr
	e.removeNode(*x.id)
	r := e.Tick(l.now.Add(time.Second))
	if len(e.confirming) != 0 {
		t.Errorf("confirmations left after the node was removed: %v", e.confirming)
	}
	if slices.Contains(r.Targets, addr) {
		t.Errorf("targets %v include the removed node's address %v", r.Targets, addr)
	}
}
