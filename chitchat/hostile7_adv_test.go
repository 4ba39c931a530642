package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Hostile review of the advertised-count cache (b464a68). The adversary
// properties run checkInvariants after every step, but with the default
// DeadNodeGracePeriod (24 h) and steps of at most 5 s: no counted node ever
// reaches its scheduled deletion, so the cache's deadline is never crossed
// there. This property uses grace periods of seconds, deaths (silenced
// engines), leaves, forged notices and digests, resets, garbage
// collection, time jumps (forward and back), and compares every cached
// count with one made afresh at the very moment asked.

// advCountNet is a small cluster whose engines can be silenced.
type advCountNet struct {
	t       *rapid.T
	now     time.Time
	engines []*Engine
	byAddr  map[netip.AddrPort]int
	silent  []bool
	// bounded and scheduled count what the checks met (see the property).
	bounded, scheduled int
}

func (c *advCountNet) step(i int, in Inbound, m Message) Output {
	out := c.engines[i].Step(c.now, in, wire(c.t, m))
	c.check(i, fmt.Sprintf("Step(%v)", m.Type()))
	return out
}

// exchange runs a handshake from i to j, both speaking, unless silent.
func (c *advCountNet) exchange(i, j int, syn *Syn) {
	if c.silent[j] {
		return
	}
	from, to := c.engines[i].Self().Addr, c.engines[j].Self().Addr
	out := c.step(j, Inbound{From: from, Authentic: true}, syn)
	c.deliver(j, out.Pushes)
	if out.Reply == nil {
		return
	}
	out2 := c.step(i, Inbound{From: to, Authentic: true}, out.Reply)
	c.deliver(i, out2.Pushes)
	if out2.Reply != nil {
		c.deliver(j, c.step(j, Inbound{From: from, Authentic: true}, out2.Reply).Pushes)
	}
}

// deliver hands pushes from i to their live recipients, depth first.
func (c *advCountNet) deliver(i int, envs []Envelope) {
	for _, env := range envs {
		j, ok := c.byAddr[env.To]
		if !ok || c.silent[j] {
			continue
		}
		c.deliver(j, c.step(j, Inbound{From: c.engines[i].Self().Addr, Authentic: true}, env.Msg).Pushes)
	}
}

// check compares engine i's advertised count, cached, with a count made
// afresh with advertised, at now and at a few other moments.
func (c *advCountNet) check(i int, what string) {
	e := c.engines[i]
	if err := checkInvariants(e, nil); err != nil {
		c.t.Fatalf("%s on %v: %v", what, e.Self(), err)
	}
	if e.adv.valid && e.adv.bounded {
		c.bounded++
	}
	for _, ns := range e.states {
		if ns.evidenced && e.scheduledForDeletion(ns, c.now) {
			c.scheduled++
		}
	}
	for _, at := range []time.Time{c.now, c.now.Add(time.Second), c.now.Add(-time.Second), c.now} {
		fresh := 0
		for _, ns := range e.states {
			if e.advertised(ns, at) {
				fresh++
			}
		}
		if got := e.advertisedCount(at); got != fresh {
			c.t.Fatalf("%s on %v: advertisedCount(now + %v) = %d, %d counted afresh (cache %+v)", what, e.Self(), at.Sub(c.now), got, fresh, e.adv)
		}
	}
}

func TestPropHostile7AdvertisedCountIsFresh(t *testing.T) {
	// How often a check met a cache with a deadline, and an evidenced node
	// scheduled for deletion: the property is void if never.
	var bounded, scheduled int
	defer func() {
		if !t.Failed() && (bounded == 0 || scheduled == 0) {
			t.Errorf("checks met %d deadline-bounded caches and %d nodes scheduled for deletion; want some of each", bounded, scheduled)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "engines")
		grace := time.Duration(rapid.IntRange(1, 40).Draw(t, "grace seconds")) * time.Second
		c := &advCountNet{t: t, now: t0, byAddr: map[netip.AddrPort]int{}, silent: make([]bool, n)}
		defer func() { bounded, scheduled = bounded+c.bounded, scheduled+c.scheduled }()
		for i := range n {
			cfg := forTest(uint16(100 + i))
			cfg.FailureDetector.InitialInterval = time.Second
			cfg.FailureDetector.DeadNodeGracePeriod = grace
			cfg.MarkedForDeletionGracePeriod = grace
			e, err := NewEngine(cfg, rand.New(rand.NewPCG(uint64(i), 7)), nil)
			if err != nil {
				t.Fatalf("NewEngine: %v", err)
			}
			c.engines = append(c.engines, e)
			c.byAddr[e.Self().Addr] = i
		}
		stranger := NodeID{Name: "stranger", Generation: 1, Addr: netip.MustParseAddrPort("10.66.0.9:7000")}
		pick := func(label string) int { return rapid.IntRange(0, n-1).Draw(t, label) }
		for range rapid.IntRange(1, 120).Draw(t, "steps") {
			switch rapid.SampledFrom([]string{"round", "round", "round", "advance", "jump", "silence", "wake", "leave", "notice", "forged digest", "reset", "gc"}).Draw(t, "action") {
			case "round":
				c.now = c.now.Add(time.Duration(rapid.IntRange(0, 1500).Draw(t, "ms")) * time.Millisecond)
				for i, e := range c.engines {
					if c.silent[i] {
						continue
					}
					r := e.Tick(c.now)
					c.check(i, "Tick")
					c.deliver(i, r.Pushes)
					for _, to := range r.Targets {
						if j, ok := c.byAddr[to]; ok && j != i {
							c.exchange(i, j, r.Syn)
						}
					}
				}
			case "advance":
				c.now = c.now.Add(time.Duration(rapid.IntRange(0, 3000).Draw(t, "ms")) * time.Millisecond)
			case "jump":
				c.now = c.now.Add(time.Duration(rapid.IntRange(0, 2*int(grace/time.Millisecond)).Draw(t, "jump ms")) * time.Millisecond)
				for i, e := range c.engines {
					if !c.silent[i] {
						e.UpdateLiveness(c.now)
						c.check(i, "UpdateLiveness")
					}
				}
			case "silence":
				c.silent[pick("silenced")] = true
			case "wake":
				c.silent[pick("woken")] = false
			case "leave":
				i := pick("leaver")
				if err := c.engines[i].Set(LeftKey, "true"); err == nil {
					c.deliver(i, c.engines[i].Flush(c.now))
				}
			case "notice":
				i, j := pick("to"), pick("about")
				e := c.engines[i]
				hb := uint64(0)
				if ns, ok := e.lookup(c.engines[j].Self()); ok {
					hb = ns.heartbeat + uint64(rapid.IntRange(0, 2).Draw(t, "hb step"))
				}
				kind := NoticeKind(rapid.IntRange(0, 1).Draw(t, "kind"))
				from := stranger.Addr
				if rapid.Bool().Draw(t, "from a member") {
					from = c.engines[pick("spoofed")].Self().Addr
				}
				c.step(i, Inbound{From: from}, &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: kind, ID: c.engines[j].Self(), Heartbeat: hb}}})
			case "forged digest":
				i, j := pick("to"), pick("about")
				e := c.engines[i]
				hb := uint64(rapid.IntRange(0, 3).Draw(t, "hb"))
				if ns, ok := e.lookup(c.engines[j].Self()); ok {
					hb += ns.heartbeat
				}
				syn := &Syn{ClusterID: "default-cluster", Sender: stranger, Digest: Digest{
					{ID: stranger, NodeDigest: NodeDigest{Heartbeat: uint64(rapid.IntRange(1, 50).Draw(t, "stranger hb"))}},
					{ID: c.engines[j].Self(), NodeDigest: NodeDigest{Heartbeat: hb}},
				}.normalize()}
				c.step(i, Inbound{From: stranger.Addr, Size: 1200}, syn)
			case "reset":
				i, j := pick("resetter"), pick("reset")
				e := c.engines[i]
				if ns, ok := e.lookup(c.engines[j].Self()); ok && i != j {
					_ = e.ResetNodeStateIfUpdate(c.now, *ns.id, nil, ns.maxVersion+1, ns.maxVersion+1)
					c.check(i, "ResetNodeStateIfUpdate")
				}
			case "gc":
				i := pick("gc")
				c.engines[i].GCKeys(c.now)
				c.check(i, "GCKeys")
			}
			for i := range c.engines {
				c.check(i, "step")
			}
		}
	})
}

// Hostile review of the galloping seek (f53957d) in computeDelta: a
// digest as a hostile peer may send it (unsorted, with duplicates, naming
// the first and last states we hold, the self node, nodes we do not hold)
// is normalized by Step; computeDelta must then discuss exactly the nodes
// a map lookup of the digest says: a listed node from its listed max
// version, an unlisted one from 0 (no coverage: the peer knows nothing
// else).
func TestPropHostile7ComputeDeltaMatchesLookup(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e, idGen := seekEngine(t)
		now := t0
		for _, id := range rapid.SliceOfN(idGen, 0, 30).Draw(t, "held") {
			if id == e.Self() {
				continue
			}
			kvs := map[string]VersionedValue{}
			v := uint64(rapid.IntRange(1, 4).Draw(t, "versions"))
			for k := uint64(1); k <= v; k++ {
				kvs[fmt.Sprintf("k%d", k)] = VersionedValue{Value: "v", Version: k, Status: StatusSet}
			}
			if err := e.ResetNodeStateIfUpdate(now, id, kvs, v, 0); err != nil {
				t.Fatalf("ResetNodeStateIfUpdate: %v", err)
			}
		}
		if err := e.Set("own", "x"); err != nil {
			t.Fatal(err)
		}
		// The digest: entries about held nodes (the ends on request),
		// invented nodes and the self node, shuffled, some twice.
		perm := drawDigest(t, e, idGen, func(id NodeID) DigestEntry {
			return DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: 1, MaxVersion: uint64(rapid.IntRange(0, 5).Draw(t, "listed max"))}}
		})
		listed := map[NodeID]NodeDigest{}
		for _, en := range perm {
			listed[en.ID] = en.NodeDigest // the last entry for an id wins
		}
		v := &peerView{digest: Digest(perm).normalize()}
		delta := e.computeDelta(now, v, 1<<20)
		got := map[NodeID]uint64{}
		for _, nd := range delta.Nodes {
			if _, dup := got[nd.ID]; dup {
				t.Fatalf("%v twice in the delta", nd.ID)
			}
			got[nd.ID] = nd.FromVersionExcluded
		}
		want := map[NodeID]uint64{}
		for _, ns := range e.states {
			known := listed[*ns.id]
			if ns.maxVersion > known.MaxVersion && e.advertised(ns, now) {
				want[*ns.id] = known.MaxVersion
			}
		}
		if len(got) != len(want) {
			t.Fatalf("delta discusses %d nodes, a lookup says %d: got %v, want %v", len(got), len(want), got, want)
		}
		for id, from := range want {
			if g, ok := got[id]; !ok || g != from {
				t.Fatalf("%v: delta from %d (present %v), a lookup says from %d", id, g, ok, from)
			}
		}
	})
}

// The same digests through Step, for observeEntries: the states stay
// sorted and distinct, every listed node is held with at least the
// listed heartbeat (the last entry for an id wins), and no unlisted node's
// heartbeat moves.
func TestPropHostile7ObserveEntriesMatchesLookup(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e, idGen := seekEngine(t)
		now := t0
		// Held nodes, with heartbeats, from a first digest.
		var first Digest
		for _, id := range rapid.SliceOfN(idGen, 0, 30).Draw(t, "held") {
			first = append(first, DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: uint64(rapid.IntRange(1, 9).Draw(t, "held hb"))}})
		}
		stranger := NodeID{Name: "zz", Generation: 1, Addr: netip.MustParseAddrPort("10.66.0.9:7000")}
		first = append(first, DigestEntry{ID: stranger, NodeDigest: NodeDigest{Heartbeat: 1}})
		// Not through the wire, which would sort the digest: Step must
		// normalize what a caller hands it.
		e.Step(now, Inbound{From: stranger.Addr, Size: 1200}, &Syn{ClusterID: "default-cluster", Sender: stranger, Digest: first})
		before := map[NodeID]uint64{}
		for _, ns := range e.states {
			before[*ns.id] = ns.heartbeat
		}
		perm := drawDigest(t, e, idGen, func(id NodeID) DigestEntry {
			return DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: uint64(rapid.IntRange(1, 12).Draw(t, "listed hb"))}}
		})
		listed := map[NodeID]uint64{}
		for _, en := range perm {
			listed[en.ID] = en.Heartbeat
		}
		perm = append(perm, DigestEntry{ID: stranger, NodeDigest: NodeDigest{Heartbeat: 2}})
		e.Step(now.Add(time.Second), Inbound{From: stranger.Addr, Size: 1200}, &Syn{ClusterID: "default-cluster", Sender: stranger, Digest: perm})
		if err := checkInvariants(e, nil); err != nil {
			t.Fatal(err)
		}
		for id, hb := range listed {
			if id == e.Self() || id == stranger {
				continue
			}
			ns, ok := e.lookup(id)
			if !ok {
				t.Fatalf("%v listed, not held", id)
			}
			if ns.heartbeat < hb {
				t.Fatalf("%v listed at heartbeat %d, held at %d", id, hb, ns.heartbeat)
			}
		}
		for _, ns := range e.states {
			if _, ok := listed[*ns.id]; !ok && *ns.id != stranger && *ns.id != e.Self() && ns.heartbeat != before[*ns.id] {
				t.Fatalf("%v unlisted, heartbeat %d -> %d", ns.id, before[*ns.id], ns.heartbeat)
			}
		}
	})
}

// drawDigest draws an unsorted digest of entries made by entry: about the
// first and last of e's states on request, held nodes, invented ones (from
// idGen), some twice, in any order.
func drawDigest(t *rapid.T, e *Engine, idGen *rapid.Generator[NodeID], entry func(NodeID) DigestEntry) []DigestEntry {
	var d Digest
	if len(e.states) > 0 && rapid.Bool().Draw(t, "first") {
		d = append(d, entry(*e.states[0].id))
	}
	if len(e.states) > 0 && rapid.Bool().Draw(t, "last") {
		d = append(d, entry(*e.states[len(e.states)-1].id))
	}
	for range rapid.IntRange(0, 12).Draw(t, "held listed") {
		if len(e.states) > 0 {
			d = append(d, entry(*e.states[rapid.IntRange(0, len(e.states)-1).Draw(t, "state")].id))
		}
	}
	for _, id := range rapid.SliceOfN(idGen, 0, 8).Draw(t, "other listed") {
		d = append(d, entry(id))
	}
	for range rapid.IntRange(0, 4).Draw(t, "duplicates") {
		if len(d) > 0 {
			d = append(d, d[rapid.IntRange(0, len(d)-1).Draw(t, "dup")])
		}
	}
	return rapid.Permutation(d).Draw(t, "order")
}

// seekEngine returns an engine of its own, and a generator of node IDs
// crowded enough (5 names of 1 or 2 letters, 3 generations, 2 ports) for
// digests to name held nodes, neighbours and duplicates.
func seekEngine(t *rapid.T) (*Engine, *rapid.Generator[NodeID]) {
	cfg := forTest(100)
	cfg.ID = NodeID{Name: "c", Generation: 1, Addr: netip.MustParseAddrPort("10.0.0.1:7000")}
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, rapid.Custom(func(t *rapid.T) NodeID {
		return NodeID{
			Name:       rapid.StringMatching(`[a-e]{1,2}`).Draw(t, "name"),
			Generation: uint64(rapid.IntRange(0, 2).Draw(t, "gen")),
			Addr:       netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), uint16(7000+rapid.IntRange(0, 1).Draw(t, "port"))),
		}
	})
}
