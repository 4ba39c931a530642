package chitchat

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// News in milliseconds (docs/design/scale.md §7): ring broadcast, notices,
// rate limit.

// pushNet is a set of engines that exchange pushes synchronously.
type pushNet struct {
	t       *testing.T
	now     time.Time
	engines []*Engine
	byAddr  map[netip.AddrPort]*Engine
	// received counts, per engine, the pushes it got.
	received map[*Engine]int
	// hops is the largest number of hops a push travelled.
	hops int
	// drop, if set, loses the datagrams it returns true for.
	drop func(to *Engine) bool
}

// livePushNet returns n engines that all see each other live, with push
// configured by mutate.
func livePushNet(t *testing.T, n int, mutate func(*Config)) *pushNet {
	t.Helper()
	p := &pushNet{t: t, now: t0, byAddr: map[netip.AddrPort]*Engine{}, received: map[*Engine]int{}}
	for i := range n {
		cfg := forTest(uint16(100 + i))
		cfg.FailureDetector.InitialInterval = time.Second
		if mutate != nil {
			mutate(&cfg)
		}
		e := newEngine(t, cfg)
		p.engines = append(p.engines, e)
		p.byAddr[e.Self().Addr] = e
	}
	for range 20 {
		p.round()
	}
	for _, e := range p.engines {
		if got := len(e.LiveNodes()); got != n {
			t.Fatalf("%v sees %d live nodes after warm-up, want %d", e.Self(), got, n)
		}
	}
	p.received = map[*Engine]int{}
	return p
}

// round advances a second and runs a gossip round everywhere: each engine
// ticks, exchanges with its targets, and the pushes are delivered.
func (p *pushNet) round() {
	p.now = p.now.Add(time.Second)
	for _, e := range p.engines {
		r := e.Tick(p.now)
		p.deliver(e, r.Pushes, 1)
		targets := r.Targets
		if len(targets) == 0 {
			targets = []netip.AddrPort{p.engines[0].Self().Addr}
		}
		for _, to := range targets {
			if peer := p.byAddr[to]; peer != nil && peer != e {
				exchange(p.t, p.now, e, peer, r.Syn)
			}
		}
	}
}

// deliver hands pushes from e to their recipients, and their forwards,
// depth first.
func (p *pushNet) deliver(from *Engine, envs []Envelope, hop int) {
	for _, env := range envs {
		to := p.byAddr[env.To]
		if to == nil || (p.drop != nil && p.drop(to)) {
			continue
		}
		p.received[to]++
		p.hops = max(p.hops, hop)
		out := to.Step(p.now, Inbound{From: from.Self().Addr, Authentic: true}, wire(p.t, env.Msg))
		p.deliver(to, out.Pushes, hop+1)
	}
}

func (p *pushNet) has(key, value string, owner *Engine) (missing []NodeID) {
	for _, e := range p.engines {
		if e == owner {
			continue
		}
		if v, _ := e.node(owner.Self()).Get(key); v != value {
			missing = append(missing, e.Self())
		}
	}
	return missing
}

// A write is pushed down the ring: every other node receives it exactly
// once, within log_fanout(N) hops, with no gossip round.
func TestPushReachesEveryNodeOnce(t *testing.T) {
	heavy(t)
	for _, n := range []int{2, 5, 30, 100} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			p := livePushNet(t, n, nil)
			owner := p.engines[n/2]
			if err := owner.Set("news", "fresh"); err != nil {
				t.Fatal(err)
			}
			p.deliver(owner, owner.Flush(p.now), 1)
			if missing := p.has("news", "fresh", owner); len(missing) > 0 {
				t.Fatalf("%d nodes lack the news after the push: %v", len(missing), missing)
			}
			for _, e := range p.engines {
				if e != owner && p.received[e] != 1 {
					t.Errorf("%v received %d pushes, want 1", e.Self(), p.received[e])
				}
			}
			if want := int(math.Ceil(math.Log(float64(n))/math.Log(DefaultPushFanout))) + 1; p.hops > want {
				t.Errorf("%d hops, want at most %d", p.hops, want)
			}
			t.Logf("%d nodes: %d hops", n, p.hops)
		})
	}
}

// With PushRedundancy 2 every node receives the news twice (two trees), so
// that a lost datagram loses no subtree.
func TestPushRedundancy(t *testing.T) {
	heavy(t)
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("lose a datagram %v", lose), func(t *testing.T) {
			p := livePushNet(t, 30, func(c *Config) { c.PushRedundancy = 2 })
			owner := p.engines[0]
			lost := p.engines[7]
			p.drop = func(to *Engine) bool {
				if to == lost && lose {
					lose = false
					return true // the first datagram to node 7 is lost
				}
				return false
			}
			owner.Set("news", "fresh")
			p.deliver(owner, owner.Flush(p.now), 1)
			if missing := p.has("news", "fresh", owner); len(missing) > 0 {
				t.Fatalf("nodes lack the news despite the second tree: %v", missing)
			}
			for _, e := range p.engines[1:] {
				if p.drop == nil || !lose {
					if got := p.received[e]; got < 1 || got > 2 {
						t.Errorf("%v received %d pushes, want 1 or 2", e.Self(), got)
					}
				}
			}
		})
	}
	// Without loss, nearly every node hears it twice (where the two trees
	// give a node the same duty, its subtree hears it once).
	p := livePushNet(t, 30, func(c *Config) { c.PushRedundancy = 2 })
	p.engines[0].Set("news", "fresh")
	p.deliver(p.engines[0], p.engines[0].Flush(p.now), 1)
	total := 0
	for _, e := range p.engines[1:] {
		total += p.received[e]
	}
	if total < 2*29*9/10 {
		t.Errorf("%d receptions in all, want about 2 x 29", total)
	}
}

// A duplicated push is not forwarded again.
func TestPushDuplicateIsNotForwarded(t *testing.T) {
	p := livePushNet(t, 10, nil)
	owner := p.engines[0]
	owner.Set("news", "fresh")
	envs := owner.Flush(p.now)
	first := p.byAddr[envs[0].To]
	m := wire(t, envs[0].Msg)
	out1 := first.Step(p.now, Inbound{From: owner.Self().Addr}, m)
	out2 := first.Step(p.now, Inbound{From: owner.Self().Addr}, m)
	if len(out2.Pushes) != 0 {
		t.Errorf("the duplicate was forwarded to %d nodes (the first copy to %d)", len(out2.Pushes), len(out1.Pushes))
	}
	if first.push.stats.Duplicates != 1 {
		t.Errorf("Duplicates = %d, want 1", first.push.stats.Duplicates)
	}
}

// A forwarded push carries its duty's upper end alone (RingRange.
// AfterRecipient): the recipient starts the duty at its own position, and
// forwards to the live nodes up to upto. An upto at the recipient's own
// position would read as the whole ring (which route never sends), and a
// tag not the recipient's means the push was meant for an earlier identity
// at its address: either is applied and forwarded to nobody.
func TestPushDutyStartsAtTheRecipient(t *testing.T) {
	p := livePushNet(t, 10, nil)
	owner, first := p.engines[0], p.engines[1]
	owner.Set("news", "fresh")
	m := owner.Flush(p.now)[0].Msg.(*Push)
	// Rank the other nodes in ring order after first.
	var after []*Engine
	for _, ns := range first.byRef {
		if *ns.id != first.Self() {
			after = append(after, p.byAddr[ns.id.Addr])
		}
	}
	self := first.selfState().ref
	slices.SortFunc(after, func(a, b *Engine) int {
		return cmp.Compare(a.selfState().ref-self-1, b.selfState().ref-self-1) // distance after self on the ring
	})
	tests := []struct {
		name      string
		upto      uint64
		tag       uint8
		want      []*Engine // the forwards' recipients are among these
		none      bool
		misrouted bool
	}{
		{name: "up to the third node after the recipient", upto: upToBound(after[2].selfState().ref), tag: uint8(self), want: after[:3]},
		{name: "up to the recipient itself", upto: upToBound(self), tag: uint8(self), none: true},
		// Routed to an earlier identity at this address: not ours.
		{name: "another identity's tag", upto: upToBound(after[2].selfState().ref), tag: uint8(self) + 1, none: true, misrouted: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *m
			c.Notices = []Notice{{Kind: NoticeAlive, ID: owner.Self(), Heartbeat: uint64(100 + i)}} // not a duplicate
			c.Range = &RingRange{Upto: tt.upto, AfterRecipient: true, Tag: tt.tag}
			misrouted := first.push.stats.Misrouted
			out := first.Step(p.now, Inbound{From: owner.Self().Addr, Authentic: true}, wire(t, &c))
			if got := first.push.stats.Misrouted - misrouted; got != map[bool]uint64{true: 1}[tt.misrouted] {
				t.Errorf("Misrouted counted %d", got)
			}
			if tt.none {
				if len(out.Pushes) != 0 {
					t.Fatalf("forwarded to %d nodes, want none", len(out.Pushes))
				}
				return
			}
			if len(out.Pushes) != len(tt.want) {
				t.Fatalf("forwarded to %d nodes, want %d", len(out.Pushes), len(tt.want))
			}
			for _, env := range out.Pushes {
				if !slices.Contains(tt.want, p.byAddr[env.To]) {
					t.Errorf("forwarded to %v, outside the duty", env.To)
				}
			}
		})
	}
}

// The rate limit holds news back instead of sending, and releases it once
// tokens accrue; forwards beyond it are dropped and counted.
func TestPushRateLimit(t *testing.T) {
	p := livePushNet(t, 10, func(c *Config) { c.PushRate = 30 }) // bucket of 3 tokens
	owner := p.engines[0]
	owner.Set("a", "1")
	if got := len(owner.Flush(p.now)); got != 3 {
		t.Fatalf("first flush sent %d pushes, want 3 (the fanout)", got)
	}
	owner.Set("b", "2")
	if got := owner.Flush(p.now); len(got) != 0 {
		t.Fatalf("second flush at once sent %d pushes, want none (no tokens)", len(got))
	}
	if owner.push.stats.RateLimited == 0 {
		t.Error("RateLimited not counted")
	}
	later := owner.Flush(p.now.Add(200 * time.Millisecond))
	if len(later) != 3 {
		t.Fatalf("flush after 200ms sent %d pushes, want 3", len(later))
	}
	d := later[0].Msg.(*Push).Delta
	if len(d.Nodes) != 1 || len(d.Nodes[0].KeyValues) != 1 || d.Nodes[0].KeyValues[0].Key != "b" {
		t.Errorf("the held-back push carries %+v, want b only", d.Nodes)
	}
}

// With push disabled nothing is pushed, ever.
func TestPushDisabled(t *testing.T) {
	p := livePushNet(t, 5, func(c *Config) { c.DisablePush = true })
	owner := p.engines[0]
	owner.Set("a", "1")
	if got := owner.Flush(p.now); got != nil {
		t.Errorf("Flush = %v, want nothing", got)
	}
	p.round()
	for _, e := range p.engines {
		if e.push.stats.Originated+e.push.stats.Forwarded != 0 {
			t.Errorf("%v pushed with push disabled: %+v", e.Self(), e.push.stats)
		}
	}
}

// The first node to find a node dead tells the others at once: every
// survivor sees it dead in the round the first one does.
func TestDeathNotice(t *testing.T) {
	p := livePushNet(t, 8, nil)
	dead := p.engines[7]
	delete(p.byAddr, dead.Self().Addr)
	p.engines = p.engines[:7]
	for round := range 30 {
		p.round()
		seen := 0
		for _, e := range p.engines {
			if !isLive(e, dead.Self()) {
				seen++
			}
		}
		if seen == 0 {
			continue
		}
		t.Logf("dead for %d of %d survivors after %d rounds", seen, len(p.engines), round+1)
		if seen != len(p.engines) {
			t.Errorf("%d survivors see it dead, want all %d in the same round", seen, len(p.engines))
		}
		var applied uint64
		for _, e := range p.engines {
			applied += e.push.stats.NoticesDead
		}
		if applied == 0 {
			t.Error("no death notice was applied")
		}
		return
	}
	t.Fatal("nobody found the node dead")
}

// A death notice is applied only where the receiver's own phi for the node
// is already above half the threshold: one observer's trouble cannot kill
// a node others hear from.
func TestDeathNoticeNeedsASharedSuspicion(t *testing.T) {
	p := livePushNet(t, 4, nil)
	e, x := p.engines[0], p.engines[3]
	notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x.Self(), Heartbeat: e.node(x.Self()).heartbeat}}}
	e.Step(p.now, Inbound{}, wire(t, notice))
	if !isLive(e, x.Self()) {
		t.Error("a death notice killed a node heard from just now")
	}
	later := p.now.Add(6 * time.Second) // phi well above half the threshold
	notice.Notices[0].Heartbeat++       // not a duplicate of the first
	e.Step(later, Inbound{}, wire(t, notice))
	if isLive(e, x.Self()) {
		t.Error("a death notice about an overdue node was not applied")
	}
}

// A death notice that came before the receiver shared the suspicion is not
// forgotten: once the receiver's phi passes half the threshold with no
// heartbeat rise since the notice, the node is dead there (not at the full
// threshold). A rise in between voids the notice.
func TestDeathNoticeWaitsForASharedSuspicion(t *testing.T) {
	for _, rise := range []bool{false, true} {
		t.Run(fmt.Sprintf("rise %v", rise), func(t *testing.T) {
			p := livePushNet(t, 4, nil)
			e, x := p.engines[0], p.engines[3]
			hb := e.node(x.Self()).heartbeat
			notice := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x.Self(), Heartbeat: hb}}}
			e.Step(p.now, Inbound{}, wire(t, notice))
			if !isLive(e, x.Self()) {
				t.Fatal("a death notice killed a node heard from just now")
			}
			if rise {
				alive := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeAlive, ID: x.Self(), Heartbeat: hb + 1}}}
				e.Step(p.now.Add(time.Second), Inbound{From: x.Self().Addr, Authentic: true}, wire(t, alive))
			}
			// Past half the threshold (about 8 s at 1 s intervals), short
			// of the threshold itself.
			later := p.now.Add(5500 * time.Millisecond)
			if phi, _ := e.fd.Phi(e.node(x.Self()).slot, later); phi <= e.cfg.FailureDetector.PhiThreshold/2 || phi > e.cfg.FailureDetector.PhiThreshold {
				t.Fatalf("phi at the check = %.1f, want between half the threshold and the threshold", phi)
			}
			e.UpdateLiveness(later)
			if got, want := isLive(e, x.Self()), rise; got != want {
				t.Errorf("live = %v after the suspicion passed half the threshold, want %v", got, want)
			}
		})
	}
}

// A death notice about a live node reaches it: it refutes with an alive
// notice, and every node that took the notice has it live again.
func TestDeathNoticeIsRefutedByTheOwner(t *testing.T) {
	p := livePushNet(t, 6, nil)
	victim := p.engines[5]
	forged := &Push{ClusterID: "default-cluster", Range: &RingRange{After: victim.node(victim.Self()).ref, Upto: victim.node(victim.Self()).ref},
		Notices: []Notice{{Kind: NoticeDead, ID: victim.Self(), Heartbeat: 1 << 40}}}
	out := victim.Step(p.now, Inbound{}, wire(t, forged))
	var refuted bool
	for _, env := range out.Pushes {
		for _, n := range env.Msg.(*Push).Notices {
			refuted = refuted || (n.Kind == NoticeAlive && n.ID == victim.Self())
		}
	}
	if !refuted {
		t.Errorf("the victim did not answer the death notice with an alive notice: %+v", out.Pushes)
	}
}

// A joining node with no live peer announces itself through its seed, which
// forwards it down the ring: everyone holds it live at once.
func TestJoinIsAnnouncedThroughTheSeed(t *testing.T) {
	p := livePushNet(t, 20, nil)
	cfg := forTest(999)
	cfg.Seeds = []string{p.engines[0].Self().Addr.String()}
	joiner := newEngine(t, cfg, KeyValue{"role", "new"})
	p.byAddr[joiner.Self().Addr] = joiner
	r := joiner.Tick(p.now)
	if len(r.Pushes) != 1 || r.Pushes[0].To != p.engines[0].Self().Addr {
		t.Fatalf("the joiner pushed %v, want one push to its seed", r.Pushes)
	}
	p.deliver(joiner, r.Pushes, 1)
	for _, e := range p.engines {
		if !isLive(e, joiner.Self()) {
			t.Errorf("%v does not see the joiner live at once", e.Self())
		}
		if ns, ok := e.NodeState(joiner.Self()); !ok || kvs(ns)["role"] != "new" {
			t.Errorf("%v lacks the joiner's state", e.Self())
		}
	}
}
