package overlay

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// newTestEngine returns a chitchat engine (no I/O) named name, listening on
// 127.0.0.1:port, with initial key-values.
func newTestEngine(tb testing.TB, name string, gen uint64, port uint16, kvs ...chitchat.KeyValue) *chitchat.Engine {
	tb.Helper()
	cfg := chitchat.Config{
		ID:        chitchat.NodeID{Name: name, Generation: gen, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
		ClusterID: "test",
	}
	e, err := chitchat.NewEngine(cfg, rand.New(rand.NewPCG(uint64(port), 1)), kvs)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// gossipRounds runs rounds of full-mesh gossip between the engines, one
// second apart, and returns the new time.
func gossipRounds(now time.Time, rounds int, es ...*chitchat.Engine) time.Time {
	for range rounds {
		now = now.Add(time.Second)
		for _, e := range es {
			e.Tick(now)
		}
		for _, a := range es {
			for _, b := range es {
				if a == b {
					continue
				}
				if synAck := b.Process(now, a.CreateSyn(now)); synAck != nil {
					if ack := a.Process(now, synAck); ack != nil {
						b.Process(now, ack)
					}
				}
			}
		}
	}
	for _, e := range es {
		e.UpdateLiveness(now)
	}
	return now
}

func kv(tb testing.TB, info PeerInfo) chitchat.KeyValue {
	tb.Helper()
	v, err := info.EncodeValue()
	if err != nil {
		tb.Fatal(err)
	}
	return chitchat.KeyValue{Key: GossipKey(info.NodeID), Value: v}
}

func TestFromSnapshot(t *testing.T) {
	info2, info6old, info6new := testInfo(2), testInfo(6), testInfo(6)
	info6new.Endpoint = netip.MustParseAddrPort("127.0.0.1:60006")
	wrongID := testInfo(5)
	wrongIDValue, _ := wrongID.EncodeValue()

	me := newTestEngine(t, "worker:1", 0, 7001, kv(t, testInfo(1)))
	es := []*chitchat.Engine{
		me,
		newTestEngine(t, "worker:2", 0, 7002, kv(t, info2)),
		newTestEngine(t, "bad", 0, 7003, chitchat.KeyValue{Key: "worker:3", Value: "garbage"}),
		newTestEngine(t, "liar", 0, 7004, chitchat.KeyValue{Key: "worker:4", Value: wrongIDValue}),
		newTestEngine(t, "other-app", 0, 7005, chitchat.KeyValue{Key: "worker:abc", Value: "x"}, chitchat.KeyValue{Key: "role", Value: "db"}),
		newTestEngine(t, "me-before-restart", 0, 7006, kv(t, testInfo(1))),
		newTestEngine(t, "worker:6", 1, 7007, kv(t, info6old)),
		newTestEngine(t, "worker:6", 2, 7008, kv(t, info6new)),
	}
	now := gossipRounds(time.Unix(1000, 0), 5, es...)
	snap := me.Snapshot(now)
	if len(snap.Live) != len(es) {
		t.Fatalf("live = %v, want all %d nodes", snap.Live, len(es))
	}

	got, skipped := FromSnapshot(snap, 1)
	if diff := cmp.Diff([]PeerInfo{info2, info6new}, got, cmpInfo); diff != "" {
		t.Errorf("peers mismatch (-want +got):\n%s", diff)
	}
	type skip struct {
		Reason SkipReason
		Node   string
		Key    string
	}
	var gotSkips []skip
	for _, s := range skipped {
		gotSkips = append(gotSkips, skip{s.Reason, s.Node.Name, s.Key})
		if s.Reason == SkipMalformed && s.Err == nil {
			t.Errorf("malformed %v without an error", s)
		}
	}
	wantSkips := []skip{
		{SkipMalformed, "bad", "worker:3"},
		{SkipMalformed, "liar", "worker:4"},
		{SkipSelf, "me-before-restart", "worker:1"},
		{SkipSuperseded, "worker:6", "worker:6"},
	}
	sortSkips := cmpopts.SortSlices(func(a, b skip) bool { return a.Key+a.Node < b.Key+b.Node })
	if diff := cmp.Diff(wantSkips, gotSkips, sortSkips); diff != "" {
		t.Errorf("skipped mismatch (-want +got):\n%s", diff)
	}

	t.Run("dead nodes are left out", func(t *testing.T) {
		dead := snap
		dead.Live = slices.DeleteFunc(slices.Clone(snap.Live), func(id chitchat.NodeID) bool { return id.Name == "worker:2" })
		got, _ := FromSnapshot(dead, 1)
		if diff := cmp.Diff([]PeerInfo{info6new}, got, cmpInfo); diff != "" {
			t.Errorf("peers mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("older incarnation alone is used", func(t *testing.T) {
		old := snap
		old.Live = slices.DeleteFunc(slices.Clone(snap.Live), func(id chitchat.NodeID) bool { return id.Generation == 2 })
		got, _ := FromSnapshot(old, 1)
		if diff := cmp.Diff([]PeerInfo{info2, info6old}, got, cmpInfo); diff != "" {
			t.Errorf("peers mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("deleted key", func(t *testing.T) {
		es[1].Delete(now, GossipKey(2))
		now := gossipRounds(now, 1, es...)
		got, _ := FromSnapshot(me.Snapshot(now), 1)
		if diff := cmp.Diff([]PeerInfo{info6new}, got, cmpInfo); diff != "" {
			t.Errorf("peers mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestBuild(t *testing.T) {
	self := testPrivateKey(1)
	peerOf := func(info PeerInfo, keepalive time.Duration) Peer {
		return Peer{
			PublicKey:           info.PublicKey,
			Endpoint:            info.Endpoint,
			AllowedIPs:          []netip.Prefix{hostPrefix(info.OverlayIP)},
			PersistentKeepalive: keepalive,
		}
	}
	v6 := testInfo(3)
	v6.OverlayIP = netip.MustParseAddr("fd00::3")
	mapped := testInfo(4)
	mapped.OverlayIP = netip.MustParseAddr("::ffff:100.64.0.4")
	mapped.Endpoint = netip.MustParseAddrPort("[::ffff:127.0.0.1]:51824")
	sameKey := testInfo(5)
	sameKey.PublicKey = testInfo(2).PublicKey
	sameIP := testInfo(6)
	sameIP.OverlayIP = testInfo(2).OverlayIP
	ownKey := testInfo(7)
	ownKey.PublicKey = self.PublicKey()
	ownIP := testInfo(8)
	ownIP.OverlayIP = testInfo(1).OverlayIP
	invalid := testInfo(9)
	invalid.Endpoint = netip.AddrPort{}

	at := func(n uint64, ip, endpoint string) PeerInfo {
		info := testInfo(n)
		if ip != "" {
			info.OverlayIP = netip.MustParseAddr(ip)
		}
		if endpoint != "" {
			info.Endpoint = netip.MustParseAddrPort(endpoint)
		}
		return info
	}
	public := func(n uint64) PeerInfo { return at(n, "", fmt.Sprintf("203.0.113.%d:51820", n)) }

	tests := []struct {
		name      string
		infos     []PeerInfo
		opts      BuildOptions
		strict    bool // no AllowLoopbackEndpoints (the tests' peers are on 127.0.0.1)
		want      []Peer
		wantSkips map[uint64]SkipReason
	}{
		{name: "none"},
		{
			name:  "IPv4 and IPv6 get /32 and /128",
			infos: []PeerInfo{testInfo(2), v6},
			want:  []Peer{peerOf(testInfo(2), 0), peerOf(v6, 0)},
		},
		{
			name:  "keepalive rounded down to seconds",
			infos: []PeerInfo{testInfo(2)},
			opts:  BuildOptions{PersistentKeepalive: 25*time.Second + 300*time.Millisecond},
			want:  []Peer{peerOf(testInfo(2), 25*time.Second)},
		},
		{
			name:  "IPv4-mapped addresses are unmapped",
			infos: []PeerInfo{mapped},
			want: []Peer{{
				PublicKey:  mapped.PublicKey,
				Endpoint:   netip.MustParseAddrPort("127.0.0.1:51824"),
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.4/32")},
			}},
		},
		{
			name:      "first of a duplicate key or IP wins",
			infos:     []PeerInfo{testInfo(2), sameKey, sameIP},
			want:      []Peer{peerOf(testInfo(2), 0)},
			wantSkips: map[uint64]SkipReason{5: SkipDuplicateKey, 6: SkipDuplicateIP},
		},
		{
			name:      "our key, our IP, invalid",
			infos:     []PeerInfo{ownKey, ownIP, invalid, testInfo(2)},
			opts:      BuildOptions{SelfPublicKey: self.PublicKey(), SelfOverlayIP: testInfo(1).OverlayIP},
			want:      []Peer{peerOf(testInfo(2), 0)},
			wantSkips: map[uint64]SkipReason{7: SkipOwnKey, 8: SkipDuplicateIP, 9: SkipMalformed},
		},
		{
			name: "overlay IPs refused by class",
			infos: []PeerInfo{
				at(10, "127.0.0.10", ""), at(11, "169.254.169.254", ""), at(12, "224.0.0.1", ""),
				at(13, "255.255.255.255", ""), at(14, "fe80::1", ""), at(15, "::1", ""), at(16, "ff02::1", ""),
				testInfo(2),
			},
			want:      []Peer{peerOf(testInfo(2), 0)},
			wantSkips: map[uint64]SkipReason{10: SkipRefused, 11: SkipRefused, 12: SkipRefused, 13: SkipRefused, 14: SkipRefused, 15: SkipRefused, 16: SkipRefused},
		},
		{
			name:      "overlay IPs outside the default private ranges",
			infos:     []PeerInfo{at(10, "8.8.8.8", ""), at(11, "10.1.2.3", ""), at(12, "2001:db8::1", ""), at(13, "fd12::1", "")},
			want:      []Peer{peerOf(at(11, "10.1.2.3", ""), 0), peerOf(at(13, "fd12::1", ""), 0)},
			wantSkips: map[uint64]SkipReason{10: SkipRefused, 12: SkipRefused},
		},
		{
			name:  "overlay prefix",
			infos: []PeerInfo{at(10, "10.200.0.10", ""), at(11, "10.201.0.1", ""), at(12, "10.200.255.255", ""), at(13, "8.8.8.8", "")},
			opts: BuildOptions{OverlayPrefixes: []netip.Prefix{
				netip.MustParsePrefix("10.200.0.0/16"), netip.MustParsePrefix("8.8.8.8/32"),
			}},
			want:      []Peer{peerOf(at(10, "10.200.0.10", ""), 0), peerOf(at(13, "8.8.8.8", ""), 0)},
			wantSkips: map[uint64]SkipReason{11: SkipRefused, 12: SkipRefused},
		},
		{
			name:   "endpoints refused by class, loopback by default",
			strict: true,
			infos: []PeerInfo{
				testInfo(10), at(11, "", "[::1]:51820"), at(12, "", "169.254.169.254:80"), at(13, "", "[fe80::1%2]:51820"),
				at(14, "", "224.0.0.1:51820"), at(15, "", "255.255.255.255:51820"), public(2), at(3, "", "[2001:db8::3]:51820"),
			},
			want:      []Peer{peerOf(public(2), 0), peerOf(at(3, "", "[2001:db8::3]:51820"), 0)},
			wantSkips: map[uint64]SkipReason{10: SkipRefused, 11: SkipRefused, 12: SkipRefused, 13: SkipRefused, 14: SkipRefused, 15: SkipRefused},
		},
		{
			name:      "loopback endpoints when allowed, other classes still refused",
			infos:     []PeerInfo{testInfo(2), at(3, "", "[::1]:51820"), at(12, "", "169.254.169.254:80")},
			want:      []Peer{peerOf(testInfo(2), 0), peerOf(at(3, "", "[::1]:51820"), 0)},
			wantSkips: map[uint64]SkipReason{12: SkipRefused},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.AllowLoopbackEndpoints = !tt.strict
			got, skipped := Build(tt.infos, tt.opts)
			if diff := cmp.Diff(tt.want, got, cmpInfo); diff != "" {
				t.Errorf("peers mismatch (-want +got):\n%s", diff)
			}
			gotSkips := map[uint64]SkipReason{}
			for _, s := range skipped {
				gotSkips[s.NodeID] = s.Reason
				if str := s.String(); !strings.Contains(str, s.Reason.String()) || !strings.Contains(str, s.Key) {
					t.Errorf("Skipped.String() = %q: want the key %q and the reason %q", str, s.Key, s.Reason)
				}
			}
			if diff := cmp.Diff(tt.wantSkips, gotSkips, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("skipped mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSkipReasonString(t *testing.T) {
	for r := SkipMalformed; r <= SkipRefused; r++ {
		if s := r.String(); s == "" || s[0] == 'S' {
			t.Errorf("SkipReason(%d).String() = %q", r, s)
		}
	}
	if s := SkipReason(99).String(); s != "SkipReason(99)" {
		t.Errorf("String() = %q", s)
	}
}

// A restarted node can be live before its entry arrives (a node never seen
// live is judged at its first evidence; its keys follow in the next
// message): until then the previous incarnation's entry stands, so that
// the restart is one Updated event, not Left then Joined (CI saw that
// order once in TestPoolRestartGenerationZero/crash).
func TestNewerIncarnationWithoutEntryDoesNotSupersede(t *testing.T) {
	info7old := testInfo(7)
	me := newTestEngine(t, "worker:1", 0, 7001, kv(t, testInfo(1)))
	es := []*chitchat.Engine{
		me,
		newTestEngine(t, "worker:7", 1, 7007, kv(t, info7old)),
		newTestEngine(t, "worker:7", 2, 7008), // restarted, entry not published yet
	}
	now := gossipRounds(time.Unix(1000, 0), 5, es...)
	snap := me.Snapshot(now)
	if len(snap.Live) != len(es) {
		t.Fatalf("live = %v, want all %d nodes", snap.Live, len(es))
	}
	got, skipped := FromSnapshot(snap, 1)
	if diff := cmp.Diff([]PeerInfo{info7old}, got, cmpInfo); diff != "" {
		t.Errorf("peers mismatch (-want +got):\n%s", diff)
	}
	for _, s := range skipped {
		t.Errorf("skipped %v: want nothing skipped", s)
	}
}
