package chitchat

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Ring monitors (monitor.go, docs/design/scale.md §5).

// partialPushNet is livePushNet with Syns that cover one bucket of four
// nodes: the digest never fits, as at N = 5,000 with 1,400-byte datagrams.
func partialPushNet(t *testing.T, n int) *pushNet {
	t.Helper()
	p := livePushNet(t, n, nil)
	for _, e := range p.engines {
		e.tune = tuning{bucketTarget: 4, maxBuckets: 1}
		e.CreateSyn(p.now)
		if !e.monitoring() {
			t.Fatalf("%v: monitors not in force with one bucket per Syn", e.Self())
		}
	}
	return p
}

// ringFrom returns the other nodes of e's ring in ring order from e on:
// successors first, predecessors last.
func ringFrom(e *Engine) []*NodeState {
	i := e.ringIndex(e.selfNS)
	var ring []*NodeState
	for step := 1; step < len(e.byRef); step++ {
		ring = append(ring, e.byRef[(i+step)%len(e.byRef)])
	}
	return ring
}

// A node's Syn goes, in turn, to each of its three live successors on the
// ring, and to two random live peers; with the whole digest in each Syn,
// targets are upstream's three random live peers.
func TestRingMonitorsAreGossipedWithInTurn(t *testing.T) {
	p := partialPushNet(t, 12)
	e := p.engines[0]
	ring := ringFrom(e)
	// Dead successors are skipped: the first successor dies here.
	e.fd.MarkDead(ring[0].slot, p.now)
	e.mirror(ring[0], p.now)
	succ := []netip.AddrPort{ring[1].id.Addr, ring[2].id.Addr, ring[3].id.Addr}
	seen := map[netip.AddrPort]int{}
	for range 6 {
		p.now = p.now.Add(time.Second)
		want := succ[e.round%monitorCount] // the round Tick is about to start
		r := e.Tick(p.now)
		if !slices.Contains(r.Targets, want) {
			t.Errorf("round %d: targets %v lack the monitor %v", e.round, r.Targets, want)
		}
		for _, a := range r.Targets {
			if a == ring[0].id.Addr && len(r.Targets) < 4 {
				t.Errorf("round %d: the dead successor was a live target: %v", e.round, r.Targets)
			}
		}
		seen[want]++
	}
	for _, a := range succ {
		if seen[a] != 2 {
			t.Errorf("monitor %v was targeted %d times in 6 rounds, want 2", a, seen[a])
		}
	}

	// The whole digest fits: upstream's three random live peers.
	full := livePushNet(t, 12, nil)
	f := full.engines[0]
	f.CreateSyn(full.now)
	if f.monitoring() {
		t.Fatal("monitors in force though every Syn carries the whole digest")
	}
	if got := f.Tick(full.now.Add(time.Second)).Targets; len(got) < gossipCount {
		t.Errorf("full digest: targets %v, want at least %d", got, gossipCount)
	}
}

// An observer judges the nodes it monitors (its three live predecessors)
// at the threshold; the others, when it hears of them less often than a
// monitor does, at deferFactor times the threshold: it leaves the verdict to
// their monitors' notices. One that hears of a node as often as a monitor
// judges it at the threshold.
func TestRingMonitorsJudgeOthersDefer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		every     time.Duration // between heartbeat rises
		monitored bool
		deadAfter float64 // in mean intervals, with the threshold at 8
	}{
		{"monitored, sparse", 4 * time.Second, true, 8},
		{"not monitored, sparse", 4 * time.Second, false, 8 * deferFactor},
		{"not monitored, dense", time.Second, false, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := partialPushNet(t, 12)
			e := p.engines[0]
			ring := ringFrom(e)
			x := ring[len(ring)-1] // the nearest predecessor
			if !tc.monitored {
				x = ring[len(ring)/2]
			}
			// Rises every tc.every for 40 intervals: the window's mean is
			// tc.every whatever came before.
			now := p.now
			for range 40 {
				now = now.Add(tc.every)
				for _, ns := range ring {
					e.observeHeartbeat(now, ns, ns.heartbeat+1, false, false)
				}
				e.UpdateLiveness(now)
			}
			if _, ok := e.fd.Mean(x.slot); !ok {
				t.Fatal("no mean")
			}
			if got := slices.Contains(e.watched[:], x); got != tc.monitored {
				t.Fatalf("monitored = %v, want %v (watched %v)", got, tc.monitored, e.watched)
			}
			mean, _ := e.fd.Mean(x.slot)
			at := func(k float64) time.Time { return now.Add(time.Duration(k * float64(mean))) }
			e.UpdateLiveness(at(tc.deadAfter - 0.5))
			if !isLive(e, *x.id) {
				t.Fatalf("dead %.1f mean intervals after its last rise, want live until %v", tc.deadAfter-0.5, tc.deadAfter)
			}
			e.UpdateLiveness(at(tc.deadAfter + 0.5))
			if isLive(e, *x.id) {
				t.Errorf("live %.1f mean intervals after its last rise, want dead after %v", tc.deadAfter+0.5, tc.deadAfter)
			}
		})
	}
}

// A death notice names the heartbeat the node had when it was found dead.
// Heartbeats up to it that reach us later from hearsay are the dead node's
// past still spreading: they neither revive it nor void a notice we keep.
// A heartbeat past it, or word from the node itself, is life.
func TestDeathNoticeHeartbeatIsThePast(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rise   uint64 // above our heartbeat when the notice came
		direct bool
		live   bool
	}{
		{"hearsay up to the notice's", 5, false, false},
		{"hearsay past the notice's", 6, false, true},
		{"the node itself", 3, true, true},
	} {
		for _, kept := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/kept %v", tc.name, kept), func(t *testing.T) {
				p := livePushNet(t, 4, nil)
				e, x := p.engines[0], p.engines[3]
				ns := e.node(x.Self())
				hb := ns.heartbeat
				notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x.Self(), Heartbeat: hb + 5}}}
				at := p.now.Add(6 * time.Second) // past half the threshold
				if kept {
					at = p.now // kept until then
				}
				e.Step(at, Inbound{}, wire(t, notice))
				if isLive(e, x.Self()) != kept {
					t.Fatalf("live = %v after the notice, want %v", !kept, kept)
				}
				rise := p.now.Add(2 * time.Second)
				if !kept {
					rise = at.Add(time.Second)
				}
				e.observeHeartbeat(rise, ns, hb+tc.rise, tc.direct, tc.direct)
				if ns.heartbeat != hb+tc.rise {
					t.Errorf("state heartbeat %d, want %d: anti-entropy must keep it", ns.heartbeat, hb+tc.rise)
				}
				// Half the threshold (about 8 s here) after the notice's
				// last rise, short of the threshold.
				judged := p.now.Add(5500 * time.Millisecond)
				if !kept {
					judged = rise.Add(time.Second)
				}
				e.UpdateLiveness(judged)
				if got := isLive(e, x.Self()); got != tc.live {
					t.Errorf("live = %v after a rise of %d (notice +5, direct %v), want %v", got, tc.rise, tc.direct, tc.live)
				}
			})
		}
	}
}

// A node we monitor is judged with the prior of its mean capped at
// monitorCount gossip intervals: it gossips with us at least that often,
// however rarely we hear of a typical peer (whose intervals the prior
// learned). Nodes we do not monitor keep the learned prior.
func TestRingMonitorsCapThePrior(t *testing.T) {
	p := partialPushNet(t, 12)
	e := p.engines[0]
	ring := ringFrom(e)
	x, y := ring[len(ring)-1], ring[len(ring)/2] // monitored, not
	// Every peer rises every 9 s: the learned prior climbs well above
	// monitorCount intervals (3 s here).
	now := p.now
	for range 60 {
		now = now.Add(9 * time.Second)
		for _, ns := range ring {
			e.observeHeartbeat(now, ns, ns.heartbeat+1, false, false)
		}
		e.UpdateLiveness(now)
	}
	every := monitorCount * e.cfg.GossipInterval
	if prior := e.fd.model.Prior(); prior <= every {
		t.Fatalf("learned prior %v, want above %v", prior, every)
	}
	if b := e.bar(x); b.MaxPrior != every || b.Threshold != e.cfg.FailureDetector.PhiThreshold {
		t.Errorf("monitored node's bar %+v, want the threshold and the prior capped at %v", b, every)
	}
	if b := e.bar(y); b.MaxPrior != 0 || !b.PriorFloor || b.Threshold != deferFactor*e.cfg.FailureDetector.PhiThreshold {
		t.Errorf("unmonitored node's bar %+v, want no cap, the prior as a floor, the threshold times %d", b, deferFactor)
	}
	later := now.Add(5 * time.Second)
	capped, _ := e.phi(x, later)
	learned, _ := e.fd.Phi(x.slot, later)
	if capped <= learned {
		t.Errorf("monitored node's phi %.4f with the capped prior, want above %.4f with the learned one", capped, learned)
	}
	mean, _ := e.fd.Mean(y.slot)
	want := later.Sub(now).Seconds() / max(mean, e.fd.model.Prior()).Seconds()
	if got, _ := e.phi(y, later); math.Abs(got-want) > 1e-9 {
		t.Errorf("unmonitored node's phi %.6f, want %.6f: elapsed over its mean or the learned prior, the larger", got, want)
	}
}

// While monitors are in force, a node found dead here does not come back on
// hearsay for deferFactor × threshold × the learned prior after its time of
// death: its last heartbeats are still spreading. Its own word, or a
// member's vouching, brings it back at once; hearsay does after that time.
func TestRingMonitorsDeadNodeSettles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		after  float64 // in settle times after the death
		direct bool
		live   bool
	}{
		{"hearsay, soon", 0.5, false, false},
		{"hearsay, later", 1.1, false, true},
		{"the node itself, soon", 0.1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := partialPushNet(t, 12)
			e := p.engines[0]
			ring := ringFrom(e)
			x := ring[len(ring)/2]
			e.fd.MarkDead(x.slot, p.now)
			e.mirror(x, p.now)
			settle := time.Duration(deferFactor * e.cfg.FailureDetector.PhiThreshold * float64(e.fd.model.Prior()))
			at := p.now.Add(time.Duration(tc.after * float64(settle)))
			e.observeHeartbeat(at, x, x.heartbeat+1, tc.direct, tc.direct)
			e.UpdateLiveness(at)
			if got := isLive(e, *x.id); got != tc.live {
				t.Errorf("live = %v after a rise %.1f settle times (%v) after its death, want %v", got, tc.after, settle, tc.live)
			}
			if x.heartbeat == 0 {
				t.Error("the state lost the heartbeat: anti-entropy must keep it")
			}
		})
	}
}

// A node never seen live here (first heard of second-hand, dead from its
// creation) is not settling: its first hearsay rise is evidence of life.
// At a cold start of 5,000 nodes, settling them kept 24 nodes from being
// live everywhere for more than 50 rounds.
func TestRingMonitorsNeverLiveNodeDoesNotSettle(t *testing.T) {
	p := partialPushNet(t, 12)
	e := p.engines[0]
	id := NodeID{Name: "second-hand", Generation: 1, Addr: netip.MustParseAddrPort("127.0.0.1:999")}
	ns := e.createNode(id)
	ns.heartbeat = 10 // a baseline from hearsay
	e.UpdateLiveness(p.now)
	if !ns.dead || ns.everLive {
		t.Fatalf("a node heard of second-hand: dead %v, ever live %v; want dead, never live", ns.dead, ns.everLive)
	}
	at := p.now.Add(time.Second)
	e.observeHeartbeat(at, ns, 11, false, false)
	e.UpdateLiveness(at)
	if !isLive(e, id) {
		t.Error("a node never seen live stayed dead after its first hearsay rise")
	}
}
