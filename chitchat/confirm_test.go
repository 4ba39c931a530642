package chitchat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Confirming a kept death notice (confirm.go, docs/design/scale.md §5).

// confirmSetup returns a partial-digest network in which engines[0] keeps a
// member's death notice about x, a node it does not monitor and heard
// from just now (its phi is far from half the threshold).
func confirmSetup(t *testing.T) (p *pushNet, e *Engine, x *NodeState, xe *Engine) {
	t.Helper()
	p = partialPushNet(t, 12)
	e = p.engines[0]
	ring := ringFrom(e)
	x = ring[len(ring)/2]
	xe = p.byAddr[x.id.Addr]
	exchange(t, p.now, xe, e, xe.CreateSyn(p.now))
	e.UpdateLiveness(p.now)
	notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: *x.id, Heartbeat: x.heartbeat}}}
	member := p.engines[1].Self().Addr
	e.Step(p.now, Inbound{From: member, Authentic: true}, wire(t, notice))
	if !isLive(e, *x.id) || !x.deathHeard {
		t.Fatalf("after the notice: live %v, kept %v; want a kept notice about a live node", isLive(e, *x.id), x.deathHeard)
	}
	return p, e, x, xe
}

// A dead node answers none of the minProbes Syns, one a round: the kept
// notice is applied in the round after the last, long before our own phi
// would have shared it.
func TestConfirmAppliesNoticeAfterUnansweredProbes(t *testing.T) {
	p, e, x, _ := confirmSetup(t)
	now := p.now
	for i := range minProbes {
		now = now.Add(200 * time.Millisecond)
		r := confirmRound(t, p, e, now, x)
		if !slices.Contains(r.Targets, x.id.Addr) {
			t.Fatalf("round %d after the notice: targets %v lack its subject %v", i+1, r.Targets, x.id.Addr)
		}
		if !isLive(e, *x.id) {
			t.Fatalf("dead after %d probes, want live until %d went unanswered", i+1, minProbes)
		}
	}
	now = now.Add(200 * time.Millisecond)
	confirmRound(t, p, e, now, x)
	if isLive(e, *x.id) {
		t.Fatalf("live after %d unanswered probes", minProbes)
	}
	if phi, _ := e.phi(x, now); phi > e.cfg.FailureDetector.PhiThreshold/2 {
		t.Fatalf("phi %.2f at the verdict: the test must show the probes decided, not phi", phi)
	}
	if got := e.push.stats.NoticesDead; got != 1 {
		t.Errorf("NoticesDead = %d, want 1", got)
	}
	if len(e.confirming) != 0 {
		t.Errorf("confirmations left: %v", e.confirming)
	}
}

// confirmRound runs a round of e in which every target but the dead one
// answers.
func confirmRound(t *testing.T, p *pushNet, e *Engine, now time.Time, dead *NodeState) Round {
	t.Helper()
	r := e.Tick(now)
	for _, to := range r.Targets {
		if peer := p.byAddr[to]; peer != nil && to != dead.id.Addr {
			exchange(t, now, e, peer, r.Syn)
		}
	}
	return r
}

// A live node answers the first probe (its SynAck from its own address
// carries a higher heartbeat: life), which voids the notice: it is never
// found dead, and is not asked again.
func TestConfirmLiveNodeAnswers(t *testing.T) {
	p, e, x, xe := confirmSetup(t)
	now := p.now
	for i := range 2 * minProbes {
		now = now.Add(200 * time.Millisecond)
		r := e.Tick(now)
		if i == 0 && !slices.Contains(r.Targets, x.id.Addr) {
			t.Fatalf("targets %v lack the notice's subject %v", r.Targets, x.id.Addr)
		}
		if slices.Contains(r.Targets, x.id.Addr) {
			exchange(t, now, e, xe, r.Syn)
		}
		if i == 0 && x.deathHeard {
			t.Fatal("the notice is still kept after its subject's answer")
		}
		if i == 1 && len(e.confirming) != 0 {
			t.Fatalf("still confirming %v a round after the answer", e.confirming)
		}
		if !isLive(e, *x.id) {
			t.Fatalf("a live node that answered was found dead at %v", now.Sub(p.now))
		}
	}
}

// With the whole digest in each Syn (monitors not in force) nothing is
// confirmed: a kept notice waits for our own phi, as before confirmation,
// and no extra Syn goes to its subject.
func TestConfirmOnlyWithMonitors(t *testing.T) {
	p := livePushNet(t, 12, nil)
	e := p.engines[0]
	e.CreateSyn(p.now)
	if e.monitoring() {
		t.Fatal("monitors in force with the whole digest")
	}
	x := e.node(p.engines[6].Self())
	e.observeHeartbeat(p.now, x, x.heartbeat+1, false, false)
	e.UpdateLiveness(p.now)
	notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: *x.id, Heartbeat: x.heartbeat}}}
	e.Step(p.now, Inbound{From: p.engines[1].Self().Addr, Authentic: true}, wire(t, notice))
	now := p.now
	for range minProbes + 1 {
		now = now.Add(200 * time.Millisecond)
		e.Tick(now)
	}
	if !isLive(e, *x.id) || len(e.confirming) != 0 {
		t.Errorf("full digest: live %v, confirming %v; want live, nothing confirmed", isLive(e, *x.id), e.confirming)
	}
}

// Notices about many live nodes (a forger's) make us ask at most
// confirmMax of them at once: a bounded number of extra Syns a round, to
// nodes we hold, at their advertised addresses.
func TestConfirmIsBounded(t *testing.T) {
	p := partialPushNet(t, 12)
	e := p.engines[0]
	var notices []Notice
	for _, ns := range ringFrom(e) {
		e.observeHeartbeat(p.now, ns, ns.heartbeat+1, false, false)
		notices = append(notices, Notice{Kind: NoticeDead, ID: *ns.id, Heartbeat: ns.heartbeat})
	}
	e.UpdateLiveness(p.now)
	e.Step(p.now, Inbound{From: p.engines[1].Self().Addr, Authentic: true}, wire(t, &Push{ClusterID: "default-cluster", Notices: notices}))
	if len(e.confirming) != confirmMax {
		t.Fatalf("confirming %d nodes, want %d", len(e.confirming), confirmMax)
	}
	held := map[netip.AddrPort]bool{}
	for _, ns := range e.states {
		held[ns.id.Addr] = true
	}
	r := e.Tick(p.now.Add(200 * time.Millisecond))
	if max := gossipCount + 2 + confirmMax; len(r.Targets) > max {
		t.Errorf("%d targets, want at most %d", len(r.Targets), max)
	}
	for _, a := range r.Targets {
		if !held[a] {
			t.Errorf("target %v is no node we hold", a)
		}
	}
}

// A monitor that has had no word from the node it monitors for
// silentRounds rounds asks it, and finds it dead when minProbes Syns go
// unanswered, however many of its past heartbeats still reach it as
// hearsay (they restarted its phi clock at every rise); it announces the
// death. Word from the node itself ends the question.
func TestConfirmSilentMonitoredNode(t *testing.T) {
	for _, answers := range []bool{false, true} {
		t.Run(fmt.Sprintf("answers %v", answers), func(t *testing.T) {
			p := partialPushNet(t, 12)
			e := p.engines[0]
			e.UpdateLiveness(p.now)
			x := e.watched[0]
			xe := p.byAddr[x.id.Addr]
			exchange(t, p.now, xe, e, xe.CreateSyn(p.now)) // its last word
			e.UpdateLiveness(p.now)
			now, step := p.now, e.cfg.GossipInterval
			verdict := time.Duration(0)
			for i := range 40 {
				now = now.Add(step)
				// Its past keeps coming as hearsay, a rise every other round.
				if i%2 == 0 {
					e.observeHeartbeat(now, x, x.heartbeat+1, false, false)
				}
				r := e.Tick(now)
				for _, to := range r.Targets {
					peer := p.byAddr[to]
					if peer == nil || (to == x.id.Addr && !answers) {
						continue
					}
					exchange(t, now, e, peer, r.Syn)
				}
				if !isLive(e, *x.id) {
					verdict = now.Sub(p.now)
					break
				}
			}
			if answers {
				if verdict != 0 {
					t.Fatalf("a monitored node that answers was found dead after %v", verdict)
				}
				return
			}
			if verdict == 0 {
				t.Fatal("a silent monitored node is still live after 40 rounds")
			}
			// silentRounds of silence, then minProbes probes and the round
			// that judges them.
			if want := time.Duration(silentRounds+minProbes+2) * step; verdict > want {
				t.Errorf("found dead %v after its last word, want at most %v", verdict, want)
			}
			if len(e.push.notices) == 0 && e.push.stats.Originated == 0 {
				t.Error("the monitor's verdict was not announced")
			}
		})
	}
}

// probesNeeded grows with the measured share of unanswered Syns so that a
// live node's answers are all lost with odds below confirmOdds.
func TestConfirmProbesFollowLoss(t *testing.T) {
	for _, tc := range []struct {
		loss     float64 // each way
		min, max int
	}{
		{0, minProbes, minProbes},
		{0.01, minProbes, minProbes + 1},
		{0.05, 4, 6},
		{0.20, 10, maxProbes},
		{0.60, maxProbes, maxProbes},
	} {
		var a answerRate
		fail := 1 - (1-tc.loss)*(1-tc.loss)
		// 20,000 rounds of 3 Syns each, each answered at the round-trip
		// rate (a seeded draw), then a stranger's SynAck, which counts for
		// nothing.
		rng := rand.New(rand.NewPCG(1, 2))
		asked := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")}
		for range 20000 {
			a.endRound(asked)
			for _, to := range asked {
				if rng.Float64() >= fail {
					a.answered(to)
					a.answered(to) // a duplicate counts once
				}
			}
			a.answered(netip.MustParseAddrPort("127.0.0.1:9"))
		}
		a.endRound(asked)
		e := &Engine{answers: a}
		if got := e.probesNeeded(); got < tc.min || got > tc.max {
			t.Errorf("loss %.0f%% each way (measured %.4f): %d probes, want %d to %d", 100*tc.loss, a.fail, got, tc.min, tc.max)
		}
		if k := e.probesNeeded(); k < maxProbes && math.Pow(fail, float64(k)) > confirmOdds {
			t.Errorf("loss %.0f%%: %d probes all lost with odds %.2g, above %g", 100*tc.loss, k, math.Pow(fail, float64(k)), confirmOdds)
		}
	}
}

// A death notice naming a heartbeat below ours (we heard of the node after
// its author last did: a dead node's last Syns went to random peers, not
// to its monitors) is kept and confirmed while monitors are in force;
// without them it is life the notice did not see, and dropped.
func TestConfirmNoticeBelowOurHeartbeat(t *testing.T) {
	for _, monitors := range []bool{true, false} {
		t.Run(fmt.Sprintf("monitors %v", monitors), func(t *testing.T) {
			var p *pushNet
			if monitors {
				p = partialPushNet(t, 12)
			} else {
				p = livePushNet(t, 12, nil)
			}
			e := p.engines[0]
			e.CreateSyn(p.now)
			x := e.node(p.engines[6].Self())
			e.UpdateLiveness(p.now)
			notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: *x.id, Heartbeat: x.heartbeat - 2}}}
			e.Step(p.now, Inbound{From: p.engines[1].Self().Addr, Authentic: true}, wire(t, notice))
			if x.deathHeard != monitors {
				t.Fatalf("kept %v, want %v", x.deathHeard, monitors)
			}
			now := p.now
			for range minProbes + 1 {
				now = now.Add(200 * time.Millisecond)
				confirmRound(t, p, e, now, x)
			}
			if isLive(e, *x.id) == monitors {
				t.Errorf("live %v after %d unanswered probes, want %v", isLive(e, *x.id), minProbes, !monitors)
			}
		})
	}
}

// Hearsay rises during a confirmation void the kept notice but do not end
// the confirmation: a dead node's last heartbeats keep reaching us for
// rounds after its death, and only the node answers for itself. Its alive
// notice relayed by a member (its answer to the death notice) does end it.
func TestConfirmHearsayDoesNotAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		rise func(t *testing.T, p *pushNet, e *Engine, x *NodeState, now time.Time)
		live bool
	}{
		{"hearsay rises", func(t *testing.T, p *pushNet, e *Engine, x *NodeState, now time.Time) {
			e.observeHeartbeat(now, x, x.heartbeat+1, false, false)
		}, false},
		{"its alive notice relayed", func(t *testing.T, p *pushNet, e *Engine, x *NodeState, now time.Time) {
			alive := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeAlive, ID: *x.id, Heartbeat: x.heartbeat + 1}}}
			e.Step(now, Inbound{From: p.engines[1].Self().Addr, Authentic: true}, wire(t, alive))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, e, x, _ := confirmSetup(t)
			now := p.now
			for range minProbes + 1 {
				now = now.Add(200 * time.Millisecond)
				confirmRound(t, p, e, now, x)
				tc.rise(t, p, e, x, now.Add(100*time.Millisecond))
			}
			if got := isLive(e, *x.id); got != tc.live {
				t.Errorf("live = %v, want %v", got, tc.live)
			}
		})
	}
}

// A push forwarded by a node that keeps a death notice about the first node
// of a chunk goes to that node without the duty (if it is dead, the chunk
// is not lost with it); the next node heads the rest.
func TestConfirmSuspectHeadsNoChunk(t *testing.T) {
	p := partialPushNet(t, 12)
	e := p.engines[0]
	whole := RingRange{After: ringBound(e.selfNS.ref), Upto: ringBound(e.selfNS.ref)}
	before := e.route(p.now, whole, 1)
	var head *NodeState
	for _, rt := range before {
		if rt.duty != nil {
			head = e.node(p.byAddr[rt.to].Self())
			break
		}
	}
	if head == nil {
		t.Fatal("no route with a duty")
	}
	head.deathHeard = true
	after := e.route(p.now, whole, 1)
	if len(after) != len(before)+1 {
		t.Fatalf("%d routes, want %d: the suspect plus its chunk's new head", len(after), len(before)+1)
	}
	for _, rt := range after {
		if rt.to == head.id.Addr && rt.duty != nil {
			t.Errorf("the suspect %v still heads a chunk", head.id)
		}
	}
	if !slices.ContainsFunc(after, func(rt route) bool { return rt.to == head.id.Addr }) {
		t.Error("the suspect gets no push: it could not refute the notice")
	}
}
