package chitchat

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Hostile review 8: the death notice's heartbeat (NodeState.aside, issue
// 13, commit 933efbb). A notice names the heartbeat the dead node had; a
// hearsay rise up to it is taken as the node's past, not as life.

// hostile8Hearsay has y tell e, in a Syn of its own, that x's heartbeat is
// hb: hearsay about x (not from x, not a vouching notice).
func hostile8Hearsay(t *testing.T, now time.Time, e, y *Engine, x *NodeState, hb uint64) {
	t.Helper()
	syn := &Syn{ClusterID: "default-cluster", Digest: Digest{
		{ID: *x.id, NodeDigest: NodeDigest{Heartbeat: hb, LastGCVersion: x.lastGCVersion, MaxVersion: x.maxVersion}},
	}}
	e.Step(now, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, syn))
}

// hostile8Watch runs rounds one second apart from *now: each tells e (via
// y) that x's heartbeat is hb plus the round number, after step(r) if
// step is not nil, and judges. It returns x's liveness round by round at
// e ("L" live, "." not) and the rounds it was not live, skipping the first
// skip rounds (baselines).
func hostile8Watch(t *testing.T, now *time.Time, e, y *Engine, x *NodeState, hb uint64, from, to, skip int, step func(r int)) (trace string, dead int) {
	t.Helper()
	for r := from; r <= to; r++ {
		*now = now.Add(time.Second)
		if step != nil {
			step(r)
		}
		hostile8Hearsay(t, *now, e, y, x, hb+uint64(r))
		e.UpdateLiveness(*now)
		if r < from+skip {
			continue
		}
		if isLive(e, *x.id) {
			trace += "L"
		} else {
			trace += "."
			dead++
		}
	}
	return trace, dead
}

// hostile8Dead is a push carrying one death notice, with no duty: applied,
// forwarded to nobody, so the victim never sees it and never refutes it.
func hostile8Dead(x NodeID, hb uint64) *Push {
	return &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x, Heartbeat: hb}}}
}

// A death notice naming a heartbeat far above the victim's (any value
// acceptable() lets through: up to 2^62) made every hearsay rise of the
// victim "its past" at the receiver: not reported to the failure detector,
// and not voiding the kept notice. A live node that the receiver hears of
// only through others' digests (the common case when Syns carry part of
// the digest: at N = 5,000 a node hears directly from a given other one
// every N/4 rounds or so) died there at half the threshold after one
// forged datagram, and stayed dead until its next direct contact with the
// receiver; before 933efbb the first rise voided the notice and it never
// died. The victim never refutes: the push names no duty, so nobody
// forwards it (a plaintext push from a non-member is not forwarded either,
// nor one whose duty tag names another node). A monitor of the victim
// sending it does no more than a stranger.
//
// Regular hearsay (one rise a second, the mean interval) keeps the victim
// live throughout, whether the notice comes once or every round.
func TestHostile8ForgedDeathHeartbeatMutesHearsay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		claim   uint64
		repeat  bool
		monitor bool // sent by a member from its own address
	}{
		{"2^50 once", 1 << 50, false, false},
		{"max safe once", maxSafeVersion, false, false},
		{"2^50 every round", 1 << 50, true, false},
		{"2^50 once, from a member", 1 << 50, false, true},
		{"2^50 every round, from a member", 1 << 50, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := livePushNet(t, 4, nil)
			e, y, z, x := p.engines[0], p.engines[1], p.engines[2], p.engines[3]
			ns := e.node(x.Self())
			hb := ns.heartbeat
			from := Inbound{From: attacker}
			if tc.monitor {
				from = Inbound{From: z.Self().Addr, Authentic: true}
			}
			e.Step(p.now, from, wire(t, hostile8Dead(x.Self(), tc.claim)))
			if !isLive(e, x.Self()) {
				t.Fatal("a death notice killed a node heard from just now")
			}
			now := p.now
			trace, deadFor := hostile8Watch(t, &now, e, y, ns, hb, 1, 60, 0, func(r int) {
				if tc.repeat { // a new heartbeat each time: not a duplicate push
					e.Step(now, from, wire(t, hostile8Dead(x.Self(), tc.claim+uint64(r))))
				}
			})
			if deadFor > 0 {
				t.Errorf("x, whose heartbeat rose at e every second, was dead there %d of 60 s after a forged death notice naming heartbeat %d (x's was %d): %s",
					deadFor, tc.claim, hb, trace)
			}
		})
	}
}

// The node itself, or a member vouching for it (its alive notice relayed
// down the ring: its answer to a death notice), voids a kept death notice,
// as any rise did before 933efbb. With the notice's heartbeat above the
// one it brings, trySetHeartbeat left deathHeard set: observeHeartbeat
// cleared the notice's heartbeat but not the notice, which then killed the
// node at half the threshold unless another rise came first.
func TestHostile8OwnWordVoidsAKeptNotice(t *testing.T) {
	for _, how := range []string{"own Syn", "relayed alive notice"} {
		for _, claim := range []uint64{1 << 50, 0} {
			t.Run(fmt.Sprintf("%s/claim %d", how, claim), func(t *testing.T) {
				p := livePushNet(t, 4, nil)
				e, y, x := p.engines[0], p.engines[1], p.engines[3]
				ns := e.node(x.Self())
				hb := ns.heartbeat
				if claim == 0 {
					claim = hb // an honest-looking notice: x's heartbeat here
				}
				e.Step(p.now, Inbound{From: attacker}, wire(t, hostile8Dead(x.Self(), claim)))
				if !isLive(e, x.Self()) || !ns.deathHeard {
					t.Fatalf("live %v, deathHeard %v after a notice at low phi: want it kept", isLive(e, x.Self()), ns.deathHeard)
				}
				spoke := p.now.Add(time.Second)
				switch how {
				case "own Syn":
					e.Step(spoke, Inbound{From: x.Self().Addr, Authentic: true}, wire(t, x.CreateSyn(spoke)))
				case "relayed alive notice":
					alive := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeAlive, ID: x.Self(), Heartbeat: x.node(x.Self()).heartbeat}}}
					e.Step(spoke, Inbound{From: y.Self().Addr, Authentic: true}, wire(t, alive))
				}
				if ns.heartbeat <= hb {
					t.Fatalf("heartbeat %d after x spoke, want above %d", ns.heartbeat, hb)
				}
				// Past half the threshold since x spoke, short of the
				// threshold: no other rise in between.
				later := spoke.Add(4500 * time.Millisecond)
				if phi, _ := e.fd.Phi(ns.slot, later); phi <= e.cfg.FailureDetector.PhiThreshold/2 || phi > e.cfg.FailureDetector.PhiThreshold {
					t.Fatalf("phi at the check = %.1f, want between half the threshold and the threshold", phi)
				}
				e.UpdateLiveness(later)
				if !isLive(e, x.Self()) {
					t.Errorf("x dead at half the threshold after it spoke (%s) past the death notice: the notice was kept through it", how)
				}
			})
		}
	}
}

// Whatever death notices a forger sends (any heartbeat, at any time, from
// a member's address or not) and however irregular the victim's hearsay
// rises, a live victim dead at the receiver is live again after at most
// pastRisesAllowed()+1 rises: a forged notice kills for a moment, as any
// notice could before 933efbb (then: one rise), never until the next
// direct contact.
func TestHostile8PropForgedNoticesKillForAMoment(t *testing.T) {
	heavy(t)
	rapid.Check(t, func(rt *rapid.T) {
		p := livePushNet(t, 4, nil)
		e, y, z, x := p.engines[0], p.engines[1], p.engines[2], p.engines[3]
		ns := e.node(x.Self())
		allowed := e.pastRisesAllowed()
		now, hb := p.now, ns.heartbeat
		risesWhileDead := 0
		for i := range 60 {
			now = now.Add(time.Duration(rapid.IntRange(100, 4000).Draw(rt, "ms")) * time.Millisecond)
			if rapid.IntRange(0, 2).Draw(rt, "forge") > 0 {
				claim := rapid.SampledFrom([]uint64{hb, hb + 3, hb + 100, 1 << 50, maxSafeVersion}).Draw(rt, "claim") + uint64(i)
				from := Inbound{From: attacker}
				if rapid.Bool().Draw(rt, "member") {
					from = Inbound{From: z.Self().Addr, Authentic: true}
				}
				e.Step(now, from, wireNoTB(rt, EncodeMessage(hostile8Dead(x.Self(), claim))))
			}
			if rapid.IntRange(0, 3).Draw(rt, "rise") > 0 {
				hb += uint64(rapid.IntRange(1, 5).Draw(rt, "by"))
				syn := &Syn{ClusterID: "default-cluster", Digest: Digest{
					{ID: x.Self(), NodeDigest: NodeDigest{Heartbeat: hb, LastGCVersion: ns.lastGCVersion, MaxVersion: ns.maxVersion}},
				}}
				e.Step(now, Inbound{From: y.Self().Addr, Authentic: true}, wireNoTB(rt, EncodeMessage(syn)))
				if !isLive(e, x.Self()) {
					risesWhileDead++
				}
			}
			e.UpdateLiveness(now)
			if isLive(e, x.Self()) {
				risesWhileDead = 0
			} else if risesWhileDead > allowed {
				rt.Fatalf("step %d: x dead after %d hearsay rises while dead (at most %d muted)", i, risesWhileDead, allowed)
			}
		}
	})
}
