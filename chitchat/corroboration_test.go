package chitchat

import (
	"testing"
	"time"
)

// corroborationNet is a live 12-node cluster whose engines believe their
// gossip interval is a quarter of the 1 s between the net's rounds, so that
// heartbeats rise every 4 intervals, as with partial digests at scale. It
// returns the net, the observer, the victim (no longer ticking) and a time
// at which the observer's phi for the victim is between half the threshold
// and the threshold, past the floor of PhiThreshold intervals.
func corroborationNet(t *testing.T) (p *pushNet, e, x *Engine, later time.Time) {
	t.Helper()
	p = livePushNet(t, 12, func(c *Config) { c.GossipInterval = 250 * time.Millisecond })
	e, x = p.engines[0], p.engines[11]
	later = p.now.Add(5500 * time.Millisecond)
	phi, _ := e.fd.Phi(e.node(x.Self()).slot, later)
	if thr := e.cfg.FailureDetector.PhiThreshold; phi <= thr/2 || phi > thr {
		t.Fatalf("phi at the check = %.1f, want between half the threshold and the threshold", phi)
	}
	e.UpdateLiveness(later) // x becomes a suspect
	if !isLive(e, x.Self()) || !e.node(x.Self()).suspect {
		t.Fatalf("x live %v, suspect %v before any denial; want both", isLive(e, x.Self()), e.node(x.Self()).suspect)
	}
	return p, e, x, later
}

// denySyn is a Syn from sender naming x with heartbeat hb, as sender would
// send it from its own address.
func denySyn(t *testing.T, e, sender, x *Engine, now time.Time, hb uint64) {
	t.Helper()
	self := sender.node(sender.Self())
	syn := &Syn{ClusterID: "default-cluster", Sender: sender.Self(), Digest: Digest{
		{ID: sender.Self(), NodeDigest: self.digest()},
		{ID: x.Self(), NodeDigest: NodeDigest{Heartbeat: hb, MaxVersion: e.node(x.Self()).maxVersion}},
	}.normalize()}
	e.Step(now, Inbound{From: sender.Self().Addr, Authentic: true}, wire(t, syn))
}

// groupSenders returns n engines of p (not e or x) whose refs fall in n
// distinct denial groups, and one more engine in the first one's group.
func groupSenders(t *testing.T, p *pushNet, e, x *Engine, n int) (distinct []*Engine, sameGroup *Engine) {
	t.Helper()
	seen := map[uint64]*Engine{}
	for _, s := range p.engines {
		if s == e || s == x {
			continue
		}
		g := nodeRef(s.Self()) >> 61
		if first, ok := seen[g]; ok {
			if sameGroup == nil && len(distinct) > 0 && first == distinct[0] {
				sameGroup = s
			}
			continue
		}
		seen[g] = s
		if len(distinct) < n {
			distinct = append(distinct, s)
		}
	}
	if len(distinct) < n {
		t.Fatalf("only %d denial groups among the senders", len(distinct))
	}
	return distinct, sameGroup
}

// A suspect is found dead below the threshold once senders of three groups
// named it with no fresher heartbeat, and announced with a death notice;
// two groups, one group repeating itself, a fresher heartbeat in between,
// senders not speaking from their own address, or a last rise younger than
// PhiThreshold gossip intervals are not enough.
func TestCorroboratedSuspicion(t *testing.T) {
	tests := []struct {
		name string
		deny func(t *testing.T, p *pushNet, e, x *Engine, now time.Time)
		dead bool
	}{
		{"three groups", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 3)
			for _, s := range senders {
				denySyn(t, e, s, x, now, e.node(x.Self()).heartbeat)
			}
		}, true},
		{"three groups, older heartbeats", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 3)
			for _, s := range senders {
				denySyn(t, e, s, x, now, e.node(x.Self()).heartbeat-1)
			}
		}, true},
		{"two groups", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 2)
			for _, s := range senders {
				denySyn(t, e, s, x, now, e.node(x.Self()).heartbeat)
			}
		}, false},
		{"one sender, many times", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 1)
			for range 10 {
				denySyn(t, e, senders[0], x, now, e.node(x.Self()).heartbeat)
			}
		}, false},
		{"a fresher heartbeat between the denials", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 3)
			denySyn(t, e, senders[0], x, now, e.node(x.Self()).heartbeat)
			denySyn(t, e, senders[1], x, now, e.node(x.Self()).heartbeat)
			denySyn(t, e, senders[2], x, now, e.node(x.Self()).heartbeat+1) // a rise
			denySyn(t, e, senders[0], x, now, e.node(x.Self()).heartbeat)
		}, false},
		{"three groups, not from their own address", func(t *testing.T, p *pushNet, e, x *Engine, now time.Time) {
			senders, _ := groupSenders(t, p, e, x, 3)
			for _, s := range senders {
				self := s.node(s.Self())
				syn := &Syn{ClusterID: "default-cluster", Sender: s.Self(), Digest: Digest{
					{ID: s.Self(), NodeDigest: self.digest()},
					{ID: x.Self(), NodeDigest: NodeDigest{Heartbeat: e.node(x.Self()).heartbeat}},
				}.normalize()}
				e.Step(now, Inbound{From: p.engines[1].Self().Addr}, wire(t, syn))
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, e, x, later := corroborationNet(t)
			before := e.Stats().DeathsCorroborated
			tt.deny(t, p, e, x, later)
			out := e.Tick(later.Add(100 * time.Millisecond))
			if got := !isLive(e, x.Self()); got != tt.dead {
				t.Fatalf("dead = %v after the denials, want %v", got, tt.dead)
			}
			if got, want := e.Stats().DeathsCorroborated-before, map[bool]uint64{true: 1}[tt.dead]; got != want {
				t.Errorf("DeathsCorroborated grew by %d, want %d", got, want)
			}
			if tt.dead && !announcesDeath(out.Pushes, x.Self()) {
				t.Errorf("the verdict was not announced with a death notice: %v", out.Pushes)
			}
		})
	}
}

// The floor: with the engines' gossip interval equal to the net's rounds
// (heartbeats rising every interval, as when digests carry every node),
// denials of three groups at phi between half the threshold and the
// threshold do not make the victim dead: the last rise is younger than
// PhiThreshold intervals.
func TestCorroborationWaitsForTheFloor(t *testing.T) {
	p := livePushNet(t, 12, nil)
	e, x := p.engines[0], p.engines[11]
	later := p.now.Add(5500 * time.Millisecond)
	e.UpdateLiveness(later)
	if !e.node(x.Self()).suspect {
		t.Fatal("x is not a suspect")
	}
	senders, _ := groupSenders(t, p, e, x, 3)
	for _, s := range senders {
		denySyn(t, e, s, x, later, e.node(x.Self()).heartbeat)
	}
	e.UpdateLiveness(later.Add(100 * time.Millisecond))
	if !isLive(e, x.Self()) {
		t.Fatalf("dead %v after its last rise, under PhiThreshold (%v) gossip intervals (%v)", later.Sub(p.now), e.cfg.FailureDetector.PhiThreshold, e.cfg.GossipInterval)
	}
}

func announcesDeath(pushes []Envelope, id NodeID) bool {
	for _, env := range pushes {
		if push, ok := env.Msg.(*Push); ok {
			for _, n := range push.Notices {
				if n.Kind == NoticeDead && n.ID == id {
					return true
				}
			}
		}
	}
	return false
}
