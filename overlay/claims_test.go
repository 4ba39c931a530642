package overlay

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// TestPoolQuarantinesNewcomers: a newcomer announcing an established
// worker's overlay IP, public key or worker id is quarantined (not in the
// view), logged at Warn and counted, whatever its worker id; the conflict
// resolves when the established worker dies.
func TestPoolQuarantinesNewcomers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		var logs lockedBuffer
		cfg := testGossipConfig(net, 1)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		a := startPool(t, cfg, testInfo(1))
		evA := subscribe(t, a)
		b := startPool(t, testGossipConfig(net, 5, 1), testInfo(5))
		expect(t, evA, Joined, testInfo(5))

		// A lower worker id with b's overlay IP, one with b's key, and b's
		// own worker id, from a node whose name sorts after b's.
		stealIP, stealKey, stealID := testInfo(3), testInfo(4), testInfo(5)
		stealIP.OverlayIP = testInfo(5).OverlayIP
		stealKey.PublicKey = testInfo(5).PublicKey
		stealID.PublicKey = testPrivateKey(55).PublicKey()
		stealID.OverlayIP = netip.MustParseAddr("100.64.0.55")
		rogue, err := chitchat.Spawn(context.Background(), chitchat.Config{
			ID:             chitchat.NodeID{Name: "zz-rogue", Generation: 1, Addr: gossipAddr(9)},
			ClusterID:      "overlay-test",
			GossipInterval: testInterval,
			Seeds:          []string{gossipAddr(1).String()},
		}, net, kv(t, stealIP), kv(t, stealKey), kv(t, stealID))
		if err != nil {
			t.Fatal(err)
		}
		defer rogue.Shutdown()

		time.Sleep(10 * testInterval)
		noEvent(t, evA)
		peersOf(t, a, testInfo(5))
		if st := a.Stats(); st.Conflicts != 3 || st.Quarantined != 3 {
			t.Errorf("Stats() = %+v, want 3 conflicts, 3 quarantined", st)
		}
		if n := logs.count("level=WARN msg=\"overlay entry quarantined"); n != 3 {
			t.Errorf("%d quarantine warnings, want 3:\n%s", n, logs.b.String())
		}

		// b dies: its claims are free, the rogue's entries take them.
		if err := b.Server().Shutdown(); err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Joined, stealIP)
		expect(t, evA, Joined, stealKey)
		expect(t, evA, Updated, stealID)
		peersOf(t, a, stealIP, stealKey, stealID)
		if st := a.Stats(); st.Conflicts != 3 || st.Quarantined != 0 {
			t.Errorf("Stats() = %+v, want 3 conflicts, none quarantined now", st)
		}
	})
}

func TestResolve(t *testing.T) {
	node := func(name string, gen uint64) chitchat.NodeID {
		return chitchat.NodeID{Name: name, Generation: gen, Addr: netip.MustParseAddrPort("127.0.0.1:7000")}
	}
	c := func(info PeerInfo, name string, gen uint64) claim {
		return claim{info: info, node: node(name, gen), key: GossipKey(info.NodeID)}
	}
	with := func(info PeerInfo, f func(*PeerInfo)) PeerInfo { f(&info); return info }
	ipOf2 := func(p *PeerInfo) { p.OverlayIP = testInfo(2).OverlayIP }
	keyOf2 := func(p *PeerInfo) { p.PublicKey = testInfo(2).PublicKey }
	newKey := func(p *PeerInfo) { p.PublicKey = testPrivateKey(77).PublicKey() }
	self := testInfo(1)

	tests := []struct {
		name       string
		prev       []claim
		cands      []claim
		want       []claim
		wantSkips  map[string]SkipReason // by "key@node name"
		selfIsZero bool
	}{
		{
			name:  "established keeps its IP against a lower worker id",
			prev:  []claim{c(testInfo(2), "b", 10)},
			cands: []claim{c(with(testInfo(0), ipOf2), "a", 1), c(testInfo(2), "b", 10)},
			want:  []claim{c(testInfo(2), "b", 10)},
			wantSkips: map[string]SkipReason{
				"worker:0@a": SkipDuplicateIP,
			},
		},
		{
			name:      "established keeps its key",
			prev:      []claim{c(testInfo(2), "b", 10)},
			cands:     []claim{c(testInfo(2), "b", 10), c(with(testInfo(3), keyOf2), "c", 1)},
			want:      []claim{c(testInfo(2), "b", 10)},
			wantSkips: map[string]SkipReason{"worker:3@c": SkipDuplicateKey},
		},
		{
			name:      "established keeps its worker id against another node",
			prev:      []claim{c(testInfo(2), "b", 10)},
			cands:     []claim{c(with(testInfo(2), newKey), "a", 1), c(testInfo(2), "b", 10)},
			want:      []claim{c(testInfo(2), "b", 10)},
			wantSkips: map[string]SkipReason{"worker:2@a": SkipDuplicateID},
		},
		{
			name:  "a restart of the same node takes over with a new key",
			prev:  []claim{c(testInfo(2), "b", 10)},
			cands: []claim{c(with(testInfo(2), newKey), "b", 20)},
			want:  []claim{c(with(testInfo(2), newKey), "b", 20)},
		},
		{
			name:  "the established one gone, the newcomer gets it",
			prev:  []claim{c(testInfo(2), "b", 10)},
			cands: []claim{c(with(testInfo(0), ipOf2), "a", 30)},
			want:  []claim{c(with(testInfo(0), ipOf2), "a", 30)},
		},
		{
			name:      "newcomers: the earliest generation first",
			cands:     []claim{c(with(testInfo(0), ipOf2), "a", 30), c(testInfo(2), "b", 10)},
			want:      []claim{c(testInfo(2), "b", 10)},
			wantSkips: map[string]SkipReason{"worker:0@a": SkipDuplicateIP},
		},
		{
			name:      "an established worker moving onto another's IP is quarantined",
			prev:      []claim{c(testInfo(2), "b", 10), c(testInfo(3), "c", 5)},
			cands:     []claim{c(testInfo(2), "b", 10), c(with(testInfo(3), ipOf2), "c", 5)},
			want:      []claim{c(testInfo(2), "b", 10)},
			wantSkips: map[string]SkipReason{"worker:3@c": SkipDuplicateIP},
		},
		{
			name: "dual-stack: an established IPv6 address is kept too",
			prev: []claim{c(with(testInfo(2), func(p *PeerInfo) { p.OverlayIP6 = netip.MustParseAddr("fd00::2") }), "b", 10)},
			cands: []claim{
				c(with(testInfo(3), func(p *PeerInfo) { p.OverlayIP6 = netip.MustParseAddr("fd00::2") }), "c", 1),
				c(with(testInfo(2), func(p *PeerInfo) { p.OverlayIP6 = netip.MustParseAddr("fd00::2") }), "b", 10),
			},
			want:      []claim{c(with(testInfo(2), func(p *PeerInfo) { p.OverlayIP6 = netip.MustParseAddr("fd00::2") }), "b", 10)},
			wantSkips: map[string]SkipReason{"worker:3@c": SkipDuplicateIP},
		},
		{
			name: "this worker's key and IP",
			cands: []claim{
				c(with(testInfo(2), func(p *PeerInfo) { p.PublicKey = self.PublicKey }), "b", 1),
				c(with(testInfo(3), func(p *PeerInfo) { p.OverlayIP = self.OverlayIP }), "c", 1),
			},
			wantSkips: map[string]SkipReason{"worker:2@b": SkipOwnKey, "worker:3@c": SkipDuplicateIP},
		},
		{
			name:       "no self: nothing reserved",
			cands:      []claim{c(with(testInfo(2), func(p *PeerInfo) { p.OverlayIP = self.OverlayIP }), "b", 1)},
			want:       []claim{c(with(testInfo(2), func(p *PeerInfo) { p.OverlayIP = self.OverlayIP }), "b", 1)},
			selfIsZero: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := self
			if tt.selfIsZero {
				s = PeerInfo{}
			}
			got, skipped := resolve(tt.prev, tt.cands, s)
			if diff := cmp.Diff(tt.want, got, cmpInfo, cmp.AllowUnexported(claim{})); diff != "" {
				t.Errorf("view mismatch (-want +got):\n%s", diff)
			}
			gotSkips := map[string]SkipReason{}
			for _, sk := range skipped {
				gotSkips[sk.Key+"@"+sk.Node.Name] = sk.Reason
				if sk.Err == nil {
					t.Errorf("%v without an explanation", sk)
				}
			}
			if diff := cmp.Diff(tt.wantSkips, gotSkips, cmpInfo); diff != "" {
				t.Errorf("skipped mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSkipReasonIsConflict(t *testing.T) {
	want := map[SkipReason]bool{
		SkipMalformed: false, SkipSuperseded: false, SkipSelf: true, SkipOwnKey: true,
		SkipDuplicateKey: true, SkipDuplicateIP: true, SkipDuplicateID: true,
	}
	for r, w := range want {
		if r.IsConflict() != w {
			t.Errorf("%v.IsConflict() = %v, want %v", r, !w, w)
		}
	}
}
