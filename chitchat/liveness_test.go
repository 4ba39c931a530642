package chitchat

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Engine rounds, liveness, the live-nodes watch, snapshots and
// configuration (docs/PROTOCOL.md §7, §10.1). Virtual time only.

// beat makes e observe heartbeat hb of peer at now, as a Syn from the peer
// would.
func beat(e *Engine, now time.Time, peer NodeID, hb uint64) {
	e.reportHeartbeats(now, Digest{{ID: peer, NodeDigest: NodeDigest{Heartbeat: hb}}})
}

// makeLive feeds three heartbeats of peer ending at now, so that the next
// UpdateLiveness finds it live (docs/PROTOCOL.md §7.2).
func makeLive(e *Engine, now time.Time, peer NodeID, from uint64) {
	for i := range uint64(3) {
		beat(e, now.Add(time.Duration(i-2)*time.Second), peer, from+i)
	}
}

func watchIDs(e *Engine) (uint64, []NodeID) {
	gen, nodes := e.LiveNodesWatch()
	ids := []NodeID{}
	for _, ns := range nodes {
		ids = append(ids, ns.ID())
	}
	return gen, ids
}

func TestTick(t *testing.T) {
	cfg := forTest(1)
	cfg.Seeds = []string{"127.0.0.1:5", "127.0.0.1:1", "seed.example:7"}
	e := newEngine(t, cfg)
	// No peer yet: only the seed (self filtered out; DNS names are the
	// Server's business).
	r := e.Tick(t0)
	if diff := cmp.Diff([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5")}, r.Targets, cmpOpts); diff != "" {
		t.Errorf("targets without peers mismatch (-want +got):\n%s", diff)
	}
	if hb := e.selfState().Heartbeat(); hb != 2 || r.Syn.Digest[0].Heartbeat != 2 {
		t.Errorf("heartbeat after a round = %d (Syn %d), want 2", hb, r.Syn.Digest[0].Heartbeat)
	}
	// Five live peers: three of them per round, plus maybe the seed.
	now := t0.Add(10 * time.Second)
	for p := uint16(10); p < 15; p++ {
		makeLive(e, now, id(p), 1)
	}
	r = e.Tick(now)
	if diff := cmp.Diff([]NodeID{id(1), id(10), id(11), id(12), id(13), id(14)}, e.LiveNodes(), cmpOpts); diff != "" {
		t.Fatalf("live nodes mismatch (-want +got):\n%s", diff)
	}
	for range 20 {
		r = e.Tick(now)
		live := 0
		for _, a := range r.Targets {
			if a.Port() >= 10 && a.Port() < 15 {
				live++
			} else if a.Port() != 5 {
				t.Fatalf("unexpected target %v", a)
			}
		}
		if live != 3 {
			t.Fatalf("round picked %d live peers (%v), want 3", live, r.Targets)
		}
	}
	// All peers silent for a long time: they die; the dead pool is used.
	now = now.Add(time.Hour)
	e.UpdateLiveness(now)
	if len(e.DeadNodes()) != 5 || len(e.LiveNodes()) != 1 {
		t.Fatalf("dead %v, live %v; want 5 dead", e.DeadNodes(), e.LiveNodes())
	}
	r = e.Tick(now)
	if len(r.Targets) < 3 {
		t.Errorf("targets with only dead peers = %v, want three peers and more", r.Targets)
	}
	if got := e.Stats(); got != (EngineStats{}) {
		t.Errorf("stats %+v, want zero", got)
	}
}

// Tick collects expired tombstones of every node.
func TestTickCollectsTombstones(t *testing.T) {
	cfg := forTest(1)
	cfg.MarkedForDeletionGracePeriod = time.Minute
	e := newEngine(t, cfg, KeyValue{"a", "1"})
	e.Delete(t0, "a")
	peer := addNode(t, e, id(2))
	peer.set("b", "1")
	peer.delete(t0, "b")
	e.Tick(t0.Add(time.Minute))
	for _, ns := range []*NodeState{e.selfState(), peer} {
		if n := len(entries(ns)); n != 0 || ns.LastGCVersion() != 2 {
			t.Errorf("%v: %d entries left, last gc version %d; want none and 2", ns.ID(), n, ns.LastGCVersion())
		}
	}
}

// docs/PROTOCOL.md §7.3: the watch starts empty, is published at the end of a round only
// when the live set or a live node's max version changes, and filtered by
// the extra predicate (self included).
func TestLiveNodesWatch(t *testing.T) {
	cfg := forTest(1)
	cfg.ExtraLivenessPredicate = func(ns *NodeState) bool {
		v, _ := ns.Get("READY")
		return v == "true"
	}
	e := newEngine(t, cfg)
	if gen, ids := watchIDs(e); gen != 0 || len(ids) != 0 {
		t.Fatalf("initial watch = %d %v, want 0 and empty", gen, ids)
	}
	steps := []struct {
		name    string
		act     func(now time.Time)
		wantGen uint64
		want    []NodeID
	}{
		{name: "first round: self not ready", act: func(time.Time) {}, wantGen: 1, want: []NodeID{}},
		{name: "heartbeat only: no publication", act: func(time.Time) {}, wantGen: 1, want: []NodeID{}},
		{name: "self ready", act: func(time.Time) { _ = e.Set("READY", "true") }, wantGen: 2, want: []NodeID{id(1)}},
		{name: "peer live, not ready", act: func(now time.Time) { makeLive(e, now, id(2), 1) }, wantGen: 3, want: []NodeID{id(1)}},
		{name: "peer ready", act: func(now time.Time) {
			e.applyDelta(now, &Delta{Nodes: []NodeDelta{{ID: id(2), KeyValues: []KeyValueMutation{kv("READY", "true", 1, StatusSet)}, MaxVersion: 1}}})
			beat(e, now, id(2), 10)
		}, wantGen: 4, want: []NodeID{id(1), id(2)}},
		{name: "nothing changed", act: func(now time.Time) { beat(e, now, id(2), 11) }, wantGen: 4, want: []NodeID{id(1), id(2)}},
		{name: "peer silent: dead", act: func(time.Time) {}, wantGen: 5, want: []NodeID{id(1)}},
	}
	now := t0
	for i, s := range steps {
		if i == len(steps)-1 {
			now = now.Add(time.Hour)
		} else {
			now = now.Add(time.Second)
		}
		s.act(now)
		e.Tick(now)
		gen, ids := watchIDs(e)
		if gen != s.wantGen {
			t.Errorf("%s: generation %d, want %d", s.name, gen, s.wantGen)
		}
		if diff := cmp.Diff(s.want, ids, cmpOpts); diff != "" {
			t.Errorf("%s: watch mismatch (-want +got):\n%s", s.name, diff)
		}
	}
}

// docs/PROTOCOL.md §8.2: a dead node is left out of digests after G/2, collected
// after G, and remembered; Snapshot reflects every stage.
func TestDeadNodeLifecycle(t *testing.T) {
	cfg := forTest(1)
	cfg.FailureDetector.DeadNodeGracePeriod = 10 * time.Second
	e := newEngine(t, cfg)
	makeLive(e, t0, id(2), 1)
	setVersion(t, e.node(id(2)), "k", "v", 1)
	e.UpdateLiveness(t0)
	tDeath := t0.Add(time.Minute)
	e.UpdateLiveness(tDeath)
	stages := []struct {
		name                       string
		at                         time.Time
		wantDead, wantSched, inDig bool
		present                    bool
	}{
		{name: "just dead", at: tDeath, wantDead: true, inDig: true, present: true},
		{name: "G/2 later", at: tDeath.Add(5 * time.Second), wantDead: true, inDig: true, present: true},
		{name: "just after G/2", at: tDeath.Add(5*time.Second + time.Nanosecond), wantDead: true, wantSched: true, present: true},
		{name: "G later", at: tDeath.Add(10 * time.Second), present: false},
	}
	for _, s := range stages {
		e.UpdateLiveness(s.at)
		snap := e.Snapshot(s.at)
		_, present := snap.Node(id(2))
		if present != s.present {
			t.Errorf("%s: present %v, want %v", s.name, present, s.present)
		}
		if got := len(snap.Dead) == 1; got != s.wantDead {
			t.Errorf("%s: dead %v, want %v", s.name, snap.Dead, s.wantDead)
		}
		if got := len(snap.ScheduledForDeletion) == 1; got != s.wantSched {
			t.Errorf("%s: scheduled %v, want %v", s.name, snap.ScheduledForDeletion, s.wantSched)
		}
		if _, got := e.digest(s.at).Get(id(2)); got != s.inDig {
			t.Errorf("%s: in digest %v, want %v", s.name, got, s.inDig)
		}
		if len(snap.Live) != 1 || snap.Live[0] != id(1) || snap.Self != id(1) || snap.ClusterID != "default-cluster" {
			t.Errorf("%s: snapshot header %v %v %q", s.name, snap.Live, snap.Self, snap.ClusterID)
		}
	}
	// A node is updated and reported even while scheduled (docs/PROTOCOL.md §8.1):
	// tested above through the digest; here, the collected node's
	// remembered heartbeat is 3.
	if hb, ok := e.gcHist.peek(id(2)); !ok || hb != 3 {
		t.Errorf("GC history has %d, %v; want heartbeat 3", hb, ok)
	}
}

// The GC history is an LRU of 500 nodes (docs/PROTOCOL.md §8.3).
func TestGCHistoryLRU(t *testing.T) {
	h := newGCHistory(3)
	for i := range uint16(4) {
		h.put(id(i), uint64(i))
	}
	if _, ok := h.peek(id(0)); ok || h.len() != 3 {
		t.Errorf("oldest entry not evicted (len %d)", h.len())
	}
	h.put(id(1), 10) // refresh: now most recent
	h.put(id(4), 4)  // evicts id(2)
	if _, ok := h.peek(id(2)); ok {
		t.Error("id(2) not evicted")
	}
	if hb, ok := h.peek(id(1)); !ok || hb != 10 {
		t.Errorf("id(1) = %d, %v; want 10", hb, ok)
	}
	h.pop(id(1))
	h.pop(id(1))
	if _, ok := h.peek(id(1)); ok || h.len() != 2 {
		t.Errorf("pop failed (len %d)", h.len())
	}
	if gcHistorySize != 500 {
		t.Errorf("gcHistorySize = %d, want 500", gcHistorySize)
	}
}

func TestSnapshotIsADeepCopy(t *testing.T) {
	e := newEngine(t, forTest(1), KeyValue{"k", "v"})
	snap := e.Snapshot(t0)
	_ = e.Set("k", "w")
	ns, ok := snap.Node(id(1))
	if !ok {
		t.Fatal("self missing from the snapshot")
	}
	if v, _ := ns.Get("k"); v != "v" {
		t.Errorf("snapshot sees %q after a later Set", v)
	}
	if _, ok := snap.Node(id(2)); ok {
		t.Error("Node(unknown) found a node")
	}
	// A copy holds none of the engine's bookkeeping (nodeLocal): nothing
	// the engine writes.
	if got, _ := e.NodeState(id(1)); got == e.node(id(1)) || got.nodeLocal != nil {
		t.Error("NodeState returned the live state")
	}
	if diff := cmp.Diff([]NodeID{id(1)}, e.NodeIDs(), cmpOpts); diff != "" {
		t.Errorf("NodeIDs mismatch (-want +got):\n%s", diff)
	}
	if e.Self() != id(1) || e.ClusterID() != "default-cluster" || e.Config().GossipInterval != DefaultGossipInterval {
		t.Errorf("accessors: %v %q %v", e.Self(), e.ClusterID(), e.Config().GossipInterval)
	}
}

func TestSeeds(t *testing.T) {
	e := newEngine(t, forTest(1))
	e.SetSeeds([]netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.2:1"),
		netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"),
		netip.MustParseAddrPort("10.0.0.1:1"),
	})
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")}
	if diff := cmp.Diff(want, e.Seeds(), cmpOpts); diff != "" {
		t.Errorf("seeds mismatch (-want +got):\n%s", diff)
	}
	static, dns := parseSeeds([]string{" 1.2.3.4:5 ", "host:6", "[::ffff:1.2.3.4]:7"})
	if diff := cmp.Diff([]netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("1.2.3.4:7")}, static, cmpOpts); diff != "" {
		t.Errorf("static seeds mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"host:6"}, dns); diff != "" {
		t.Errorf("dns seeds mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		wants []string // substrings of the error, one per problem
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "empty", mod: func(c *Config) { *c = Config{} }, wants: []string{"ID.Name", "ID.Addr", "ClusterID"}},
		{name: "invalid address", mod: func(c *Config) { c.ID.Addr = netip.AddrPort{} }, wants: []string{"ID.Addr"}},
		{name: "negative durations", mod: func(c *Config) {
			c.GossipInterval = -1
			c.MarkedForDeletionGracePeriod = -1
			c.DNSRefreshInterval = -1
		}, wants: []string{"GossipInterval", "MarkedForDeletionGracePeriod", "DNSRefreshInterval"}},
		{name: "bad seed", mod: func(c *Config) { c.Seeds = []string{"nope"} }, wants: []string{`seed "nope"`}},
		{name: "datagram too small", mod: func(c *Config) { c.MaxDatagramSize = MinDatagramSize - 1 }, wants: []string{"MaxDatagramSize"}},
		{name: "datagram too large", mod: func(c *Config) { c.MaxDatagramSize = MaxDatagramSize + 1 }, wants: []string{"MaxDatagramSize"}},
		{name: "negative event buffer", mod: func(c *Config) { c.EventBuffer = -1 }, wants: []string{"EventBuffer"}},
		{name: "bad failure detector", mod: func(c *Config) { c.FailureDetector.PhiThreshold = -1 }, wants: []string{"hi"}},
		{name: "wildcard advertise address", mod: func(c *Config) { c.ID.Addr = netip.MustParseAddrPort("0.0.0.0:7000") }, wants: []string{"wildcard"}},
		{name: "IPv6 wildcard advertise address", mod: func(c *Config) { c.ID.Addr = netip.MustParseAddrPort("[::]:7000") }, wants: []string{"wildcard"}},
		{name: "negative push and stream settings", mod: func(c *Config) {
			c.PushFanout, c.PushRate, c.StreamTimeout = -1, -1, -1
		}, wants: []string{"PushFanout", "PushRate", "StreamTimeout"}},
		{name: "name too long", mod: func(c *Config) { c.ID.Name = strings.Repeat("n", 300) }, wants: []string{"MaxNodeNameSize"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := forTest(1)
			tt.mod(&cfg)
			before := cfg
			err := cfg.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n < len(tt.wants) {
				t.Errorf("%d problems reported, want %d", n, len(tt.wants))
			}
			if cfg.GossipInterval != before.GossipInterval || cfg.ClusterID != before.ClusterID {
				t.Error("Validate modified its receiver")
			}
			if _, err := NewEngine(cfg, nil, nil); err == nil {
				t.Error("NewEngine accepted an invalid config")
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{ID: NodeID{Name: "n", Addr: netip.MustParseAddrPort("[::ffff:1.2.3.4]:5")}, ClusterID: "c", Seeds: []string{"1.1.1.1:1"}}
	d := cfg.withDefaults()
	if d.ID.Addr != netip.MustParseAddrPort("1.2.3.4:5") || d.ListenAddr != d.ID.Addr {
		t.Errorf("addresses: id %v, listen %v", d.ID.Addr, d.ListenAddr)
	}
	if d.GossipInterval != DefaultGossipInterval || d.MarkedForDeletionGracePeriod != DefaultMarkedForDeletionGracePeriod ||
		d.DNSRefreshInterval != DefaultDNSRefreshInterval || d.EventBuffer != DefaultEventBuffer || d.MaxDatagramSize != MaxDatagramSize {
		t.Errorf("defaults not applied: %+v", d)
	}
	// The default Resolver (net.DefaultResolver) is set by the Server, so
	// the core stays free of package net.
	if d.FailureDetector.PhiThreshold != 8 || d.FailureDetector.DeadNodeGracePeriod != 24*time.Hour || d.Logger == nil {
		t.Errorf("failure detector / logger defaults not applied: %+v", d.FailureDetector)
	}
	d.Seeds[0] = "changed"
	if cfg.Seeds[0] != "1.1.1.1:1" {
		t.Error("withDefaults shares the caller's Seeds slice")
	}
	if err := (Config{ID: cfg.ID, ClusterID: "c", ListenAddr: netip.AddrPortFrom(netip.Addr{}, 5)}).Validate(); err == nil {
		t.Error("an invalid ListenAddr was accepted")
	}
}
