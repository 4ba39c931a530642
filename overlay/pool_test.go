package overlay

// Pool tests run inside synctest bubbles over the in-memory network: time
// is virtual, a datagram is delivered before Send returns, and so a gossip
// exchange takes no time. Every wait is a select with a virtual deadline.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/failuredetector"
	"github.com/gossipkit/chitchat-go/transport"
)

const (
	testInterval = time.Second
	// testGrace is the dead-node grace period of the pool tests: a dead
	// node is garbage collected this long after its death.
	testGrace = 2 * time.Minute
	// waitLimit bounds every wait for an event (virtual time).
	waitLimit = time.Minute
)

func gossipAddr(id uint64) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(7000+id))
}

func testGossipConfig(net transport.Transport, id uint64, seeds ...uint64) GossipConfig {
	cfg := GossipConfig{
		ClusterID:       "overlay-test",
		ListenAddr:      gossipAddr(id),
		GossipInterval:  testInterval,
		Transport:       net,
		FailureDetector: failuredetector.Config{DeadNodeGracePeriod: testGrace},
		LeaveTimeout:    -1,
	}
	for _, s := range seeds {
		cfg.Seeds = append(cfg.Seeds, gossipAddr(s).String())
	}
	return cfg
}

// startPool starts a pool for node id with testInfo(id); it is closed at
// the end of the test.
func startPool(tb testing.TB, cfg GossipConfig, info PeerInfo) *Pool {
	tb.Helper()
	p, err := StartPool(context.Background(), cfg, info)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// subscribe subscribes to p's events, the peers it already holds first,
// as Joined events: a subscriber applying events to Subscribe's current
// view, which is how the API is meant to be used. (A pool that joins
// within the first exchange, as it does since news travels faster than
// rounds, may hold a peer before the test subscribes.)
func subscribe(tb testing.TB, p *Pool) <-chan TopologyEvent {
	tb.Helper()
	current, ch, cancel := p.Subscribe()
	tb.Cleanup(cancel)
	out := make(chan TopologyEvent, len(current)+64)
	for _, info := range current {
		out <- TopologyEvent{Kind: Joined, NodeID: info.NodeID, Peer: info}
	}
	go func() {
		for ev := range ch {
			out <- ev
		}
		close(out)
	}()
	return out
}

// next returns the next event, failing after waitLimit of virtual time.
func next(tb testing.TB, ch <-chan TopologyEvent) TopologyEvent {
	tb.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			tb.Fatal("event channel closed")
		}
		return ev
	case <-time.After(waitLimit):
		tb.Fatalf("no topology event within %v", waitLimit)
	}
	panic("unreachable")
}

// expect waits for the next event and checks it.
func expect(tb testing.TB, ch <-chan TopologyEvent, kind EventKind, info PeerInfo) time.Duration {
	tb.Helper()
	start := time.Now()
	ev := next(tb, ch)
	want := TopologyEvent{Kind: kind, NodeID: info.NodeID, Peer: info}
	if diff := cmp.Diff(want, ev, cmpInfo); diff != "" {
		tb.Fatalf("event mismatch (-want +got):\n%s", diff)
	}
	return time.Since(start)
}

// noEvent checks that nothing is pending once the bubble is idle.
func noEvent(tb testing.TB, ch <-chan TopologyEvent) {
	tb.Helper()
	synctest.Wait()
	select {
	case ev := <-ch:
		tb.Fatalf("unexpected event %v", ev)
	default:
	}
}

func peersOf(tb testing.TB, p *Pool, want ...PeerInfo) {
	tb.Helper()
	if diff := cmp.Diff(want, p.Peers(), cmpInfo); diff != "" {
		tb.Errorf("Peers() mismatch (-want +got):\n%s", diff)
	}
}

func newNetwork(tb testing.TB) *transport.Network {
	tb.Helper()
	n, err := transport.NewNetwork(transport.NetworkConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// joinedPair starts pools 1 and 2 and waits until each sees the other.
func joinedPair(t *testing.T, net *transport.Network) (a, b *Pool, evA, evB <-chan TopologyEvent) {
	t.Helper()
	a = startPool(t, testGossipConfig(net, 1), testInfo(1))
	evA = subscribe(t, a)
	b = startPool(t, testGossipConfig(net, 2, 1), testInfo(2))
	evB = subscribe(t, b)
	expect(t, evA, Joined, testInfo(2))
	expect(t, evB, Joined, testInfo(1))
	synctest.Wait()
	return a, b, evA, evB
}

func TestPoolJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		start := time.Now()
		a, b, evA, evB := joinedPair(t, net)
		// chitchat deems a node live from its first datagram.
		t.Logf("joined after %v", time.Since(start))
		peersOf(t, a, testInfo(2))
		peersOf(t, b, testInfo(1))
		if st := a.Stats(); st.Peers != 1 || st.Malformed != 0 {
			t.Errorf("Stats() = %+v", st)
		}

		c := startPool(t, testGossipConfig(net, 3, 2), testInfo(3))
		evC := subscribe(t, c)
		expect(t, evA, Joined, testInfo(3))
		expect(t, evB, Joined, testInfo(3))
		// The others learn of c at once (its announcement is pushed); c
		// learns of them by gossip.
		for range 2 {
			if e := next(t, evC); e.Kind != Joined {
				t.Errorf("c: %v, want Joined", e)
			}
		}
		synctest.Wait()
		peersOf(t, c, testInfo(1), testInfo(2))
		noEvent(t, evA)
	})
}

// TestPoolUpdate: an endpoint change announced by a peer is seen at the
// first gossip exchange after it, with no further delay. Both nodes started
// at the same instant, so their rounds coincide; the announcement is made
// at a round, so the next exchange is exactly one interval later (the
// in-memory exchange itself takes no time).
func TestPoolUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, b, evA, _ := joinedPair(t, net)

		moved := testInfo(2)
		moved.Endpoint = netip.MustParseAddrPort("127.0.0.1:60002")
		if err := b.AnnounceSelf(moved); err != nil {
			t.Fatal(err)
		}
		// chitchat pushes the write: seen at once, not at the next round.
		if d := expect(t, evA, Updated, moved); d != 0 {
			t.Errorf("update seen after %v, want at once (pushed)", d)
		}
		peersOf(t, a, moved)
		if diff := cmp.Diff(moved, b.Self(), cmpInfo); diff != "" {
			t.Errorf("Self() mismatch (-want +got):\n%s", diff)
		}

		// Re-announcing the same entry changes nothing.
		if err := b.AnnounceSelf(moved); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * testInterval)
		noEvent(t, evA)
	})
}

// TestPoolKeyDeleted: chitchat does not notify deletions to subscribers,
// so a deleted entry is Left when the live-nodes watch publishes the peer's
// new max version: at the end of the receiver's first round after the
// exchange that carries the tombstone. The exchange comes one interval
// after the deletion; whether the receiver's own round at that instant
// runs before or after it is up to the scheduler, hence one or two
// intervals. (A pool restores its own entry: the deleter here is a
// chitchat node whose pool was closed, an application that stops being a
// worker.)
func TestPoolKeyDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a := startPool(t, testGossipConfig(net, 1), testInfo(1))
		evA := subscribe(t, a)
		srv, err := chitchat.Spawn(context.Background(), chitchat.Config{
			ID:             chitchat.NodeID{Name: "app-2", Addr: gossipAddr(2)},
			ClusterID:      "overlay-test",
			GossipInterval: testInterval,
			Seeds:          []string{gossipAddr(1).String()},
		}, net)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		b, err := NewPool(srv, testInfo(2), PoolOptions{})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Joined, testInfo(2))
		// The Joined came from one sync; a trigger that came meanwhile (the
		// key's Subscribe callback, say) makes another at the same instant.
		// Had it run after the deletion, it would have reported the Left at
		// once (1 run in 15 of the package under -race): let it run first.
		synctest.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if srv.Delete(GossipKey(2)) != nil {
			t.Fatal("the key was not set")
		}
		if d := expect(t, evA, Left, testInfo(2)); d != testInterval && d != 2*testInterval {
			t.Errorf("deletion seen after %v, want %v or %v", d, testInterval, 2*testInterval)
		}
		peersOf(t, a)

		// Publishing again is a join.
		if err := srv.Set(GossipKey(2), kv(t, testInfo(2)).Value); err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Joined, testInfo(2))
	})
}

// TestPoolDeathAndGC: a node that stops without leaving is Left once the
// failure detector deems it dead; its garbage collection adds no event; a
// restarted incarnation joins again.
func TestPoolDeathAndGC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, b, evA, _ := joinedPair(t, net)

		if err := b.Server().Shutdown(); err != nil { // a crash: no leave
			t.Fatal(err)
		}
		d := expect(t, evA, Left, testInfo(2))
		t.Logf("death seen after %v", d)
		peersOf(t, a)
		snap := a.Server().Snapshot()
		if len(snap.Dead) != 1 || snap.Dead[0].Name != GossipKey(2) {
			t.Errorf("dead = %v, want worker:2", snap.Dead)
		}

		time.Sleep(testGrace + 2*testInterval)
		noEvent(t, evA)
		if n := len(a.Server().Snapshot().Nodes); n != 1 {
			t.Errorf("%d node states after GC, want only self", n)
		}
		peersOf(t, a)

		cfg := testGossipConfig(net, 2, 1)
		cfg.Generation = 2
		back := testInfo(2)
		back.Endpoint = netip.MustParseAddrPort("127.0.0.1:60002")
		startPool(t, cfg, back)
		expect(t, evA, Joined, back)
	})
}

// TestPoolLeave: Close leaves the cluster, so peers report Left at the end
// of their next round instead of after failure detection.
func TestPoolLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a := startPool(t, testGossipConfig(net, 1), testInfo(1))
		evA := subscribe(t, a)
		cfg := testGossipConfig(net, 2, 1)
		cfg.LeaveTimeout = 0 // default: leave, wait up to 5 intervals
		b := startPool(t, cfg, testInfo(2))
		evB := subscribe(t, b)
		expect(t, evA, Joined, testInfo(2))
		// chitchat's Leave informs the peers the leaver deems live: wait
		// until b sees a too.
		expect(t, evB, Joined, testInfo(1))

		start := time.Now()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Left, testInfo(2))
		if d := time.Since(start); d > 2*testInterval {
			t.Errorf("leave seen after %v, want within %v", d, 2*testInterval)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// lockedBuffer is a log sink safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestPoolMalformed: a malformed entry is skipped, counted and logged once,
// never fatal; fixing it makes the peer join.
func TestPoolMalformed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		var logs lockedBuffer
		cfg := testGossipConfig(net, 1)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		a := startPool(t, cfg, testInfo(1))
		evA := subscribe(t, a)

		// A foreign node, not a pool: it writes what it likes.
		other, err := chitchat.Spawn(context.Background(), chitchat.Config{
			ID:             chitchat.NodeID{Name: "rogue", Addr: gossipAddr(9)},
			ClusterID:      "overlay-test",
			GossipInterval: testInterval,
			Seeds:          []string{gossipAddr(1).String()},
		}, net,
			chitchat.KeyValue{Key: GossipKey(3), Value: "garbage"},
			kv(t, testInfo(4)),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Shutdown()

		expect(t, evA, Joined, testInfo(4))
		time.Sleep(5 * testInterval)
		noEvent(t, evA)
		peersOf(t, a, testInfo(4))
		if got := a.Stats().Malformed; got != 1 {
			t.Errorf("Malformed = %d, want 1", got)
		}
		if n := logs.count("skipping malformed overlay entry"); n != 1 {
			t.Errorf("logged %d times, want once", n)
		}

		// Another bad value is another entry.
		bad, _ := testInfo(3).EncodeValue()
		if err := other.Set(GossipKey(3), bad[:len(bad)-4]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * testInterval)
		if got := a.Stats().Malformed; got != 2 {
			t.Errorf("Malformed = %d, want 2", got)
		}

		if err := other.Set(GossipKey(3), kv(t, testInfo(3)).Value); err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Joined, testInfo(3))
		peersOf(t, a, testInfo(3), testInfo(4))
	})
}

// TestNewPool runs a pool on a chitchat node the application owns.
func TestNewPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		srv, err := chitchat.Spawn(context.Background(), chitchat.Config{
			ID:             chitchat.NodeID{Name: "demo-1", Addr: gossipAddr(1)},
			ClusterID:      "overlay-test",
			GossipInterval: testInterval,
		}, net)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		p, err := NewPool(srv, testInfo(1), PoolOptions{EventBuffer: 8})
		if err != nil {
			t.Fatal(err)
		}
		ev := subscribe(t, p)
		if v, ok := srv.Get(GossipKey(1)); !ok || v != kv(t, testInfo(1)).Value {
			t.Errorf("self entry = %q, %v", v, ok)
		}
		startPool(t, testGossipConfig(net, 2, 1), testInfo(2))
		expect(t, ev, Joined, testInfo(2))

		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, open := <-ev; open {
			t.Error("subscription channel still open after Close")
		}
		select {
		case <-srv.Done():
			t.Error("Close stopped a server the pool does not own")
		default:
		}
		if _, ok := srv.Get(GossipKey(1)); !ok {
			t.Error("Close removed the entry")
		}
		// A closed pool hands out closed channels.
		cur, ch, cancel := p.Subscribe()
		defer cancel()
		if _, open := <-ch; open || cur != nil {
			t.Error("Subscribe on a closed pool")
		}
	})
}

// TestPoolSlowSubscriber: a full subscription drops and counts; the view
// and other subscribers are unaffected.
func TestPoolSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		cfg := testGossipConfig(net, 1)
		cfg.EventBuffer = 1
		a := startPool(t, cfg, testInfo(1))
		_, slow, cancel := a.Subscribe()
		defer cancel()
		fast := subscribe(t, a)
		for id := uint64(2); id <= 4; id++ {
			startPool(t, testGossipConfig(net, id, 1), testInfo(id))
			if ev := next(t, fast); ev.Kind != Joined {
				t.Fatalf("event %v", ev)
			}
		}
		if got := a.Stats().EventsDropped; got < 2 {
			t.Errorf("EventsDropped = %d, want >= 2", got)
		}
		if len(slow) != 1 {
			t.Errorf("slow subscriber holds %d events, want 1", len(slow))
		}
		peersOf(t, a, testInfo(2), testInfo(3), testInfo(4))
	})
}

func TestAnnounceSelfErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a := startPool(t, testGossipConfig(net, 1), testInfo(1))
		if err := a.AnnounceSelf(testInfo(2)); err == nil {
			t.Error("AnnounceSelf for another node: want an error")
		}
		bad := testInfo(1)
		bad.OverlayIP = netip.Addr{}
		if err := a.AnnounceSelf(bad); err == nil {
			t.Error("AnnounceSelf of an invalid entry: want an error")
		}
		if diff := cmp.Diff(testInfo(1), a.Self(), cmpInfo); diff != "" {
			t.Errorf("Self() changed (-want +got):\n%s", diff)
		}
	})
}

func TestGossipConfigValidate(t *testing.T) {
	ok := GossipConfig{ClusterID: "c", ListenAddr: netip.MustParseAddrPort("127.0.0.1:0")}
	tests := []struct {
		name string
		mut  func(*GossipConfig)
		want []string
	}{
		{name: "valid", mut: func(*GossipConfig) {}},
		{name: "wildcard with advertise", mut: func(c *GossipConfig) {
			c.ListenAddr = netip.MustParseAddrPort("0.0.0.0:7946")
			c.AdvertiseAddr = netip.MustParseAddrPort("192.0.2.1:7946")
		}},
		{name: "everything wrong", mut: func(c *GossipConfig) {
			*c = GossipConfig{GossipInterval: -1, MarkedForDeletionGracePeriod: -1, EventBuffer: -1}
		}, want: []string{"ClusterID", "ListenAddr", "GossipInterval", "MarkedForDeletionGracePeriod", "EventBuffer"}},
		{name: "wildcard without advertise", mut: func(c *GossipConfig) {
			c.ListenAddr = netip.MustParseAddrPort("0.0.0.0:7946")
		}, want: []string{"set AdvertiseAddr"}},
		{name: "unspecified advertise", mut: func(c *GossipConfig) {
			c.AdvertiseAddr = netip.MustParseAddrPort("[::]:7946")
		}, want: []string{"AdvertiseAddr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			checkErrors(t, c.Validate(), tt.want)
		})
	}
}

// checkErrors checks that err mentions every string of want (nil if none).
func checkErrors(tb testing.TB, err error, want []string) {
	tb.Helper()
	if len(want) == 0 {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		tb.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			tb.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestStartPoolErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		if _, err := StartPool(context.Background(), GossipConfig{}, PeerInfo{}); err == nil {
			t.Error("empty config: want an error")
		}
		startPool(t, testGossipConfig(net, 1), testInfo(1))
		_, err := StartPool(context.Background(), testGossipConfig(net, 1), testInfo(2))
		if err == nil || !strings.Contains(err.Error(), "gossip socket") {
			t.Errorf("address in use: err = %v", err)
		}
	})
}

func TestEventStrings(t *testing.T) {
	for k, want := range map[EventKind]string{Joined: "Joined", Updated: "Updated", Left: "Left", 9: "EventKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
	ev := TopologyEvent{Kind: Joined, NodeID: 1, Peer: testInfo(1)}
	if got, want := ev.String(), fmt.Sprintf("Joined(1 %v %v)", testInfo(1).OverlayIP, testInfo(1).Endpoint); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestPoolRestartGenerationZero: with GossipConfig.Generation left at 0,
// each start is a new chitchat incarnation, so the others learn a
// restarted worker's new key whether it crashed or left gracefully.
// (With a fixed generation, a restart reuses the old node id: the others
// keep the old key until the old state is collected, and never re-learn a
// worker that left.)
func TestPoolRestartGenerationZero(t *testing.T) {
	restarted := testInfo(2)
	restarted.PublicKey = testPrivateKey(42).PublicKey()
	tests := []struct {
		name     string
		leave    bool
		wantKind EventKind
	}{
		// The old incarnation is still live when the new one appears: the
		// newer one supersedes it, an update.
		{name: "crash", wantKind: Updated},
		// The old incarnation left: the worker is gone, then back.
		{name: "graceful leave", leave: true, wantKind: Joined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newNetwork(t)
				a := startPool(t, testGossipConfig(net, 1), testInfo(1))
				evA := subscribe(t, a)
				cfg := testGossipConfig(net, 2, 1)
				if tt.leave {
					cfg.LeaveTimeout = 0 // default: leave on Close
				}
				b := startPool(t, cfg, testInfo(2))
				evB := subscribe(t, b)
				expect(t, evA, Joined, testInfo(2))
				expect(t, evB, Joined, testInfo(1))
				first := b.Server().Self().Generation
				if tt.leave {
					if err := b.Close(); err != nil {
						t.Fatal(err)
					}
					expect(t, evA, Left, testInfo(2))
				} else if err := b.Server().Shutdown(); err != nil { // a crash: no leave
					t.Fatal(err)
				}
				time.Sleep(testInterval)

				again := startPool(t, cfg, restarted)
				if g := again.Server().Self().Generation; g == 0 || g <= first {
					t.Errorf("generation after a restart = %d, want > %d (now)", g, first)
				}
				// A new node is live after its first heartbeats reach a.
				if d := expect(t, evA, tt.wantKind, restarted); d > 3*testInterval {
					t.Errorf("restart seen after %v, want within 3 gossip intervals", d)
				}
				peersOf(t, a, restarted)
			})
		})
	}
}

// TestPoolGuardsOwnEntry: anything but AnnounceSelf that changes or deletes
// this worker's entry on its chitchat node (the demo's /set_kv, say) is
// undone by the pool; a set at once, before any gossip carries it, a
// deletion at the end of the round (chitchat does not notify deletions).
func TestPoolGuardsOwnEntry(t *testing.T) {
	forged := testInfo(1)
	forged.PublicKey = testPrivateKey(66).PublicKey()
	forged.Endpoint = netip.MustParseAddrPort("198.51.100.66:51820")
	tests := []struct {
		name  string
		write func(srv *chitchat.Server) error
		// within is how long the restoration may take: a set is undone in
		// no time, a deletion at the end of the node's next round.
		within time.Duration
	}{
		{name: "set", write: func(srv *chitchat.Server) error { return srv.Set(GossipKey(1), kv(t, forged).Value) }},
		{name: "set with TTL", write: func(srv *chitchat.Server) error { return srv.SetWithTTL(GossipKey(1), kv(t, forged).Value) }},
		{name: "delete", within: testInterval, write: func(srv *chitchat.Server) error {
			if srv.Delete(GossipKey(1)) != nil {
				return fmt.Errorf("no key to delete")
			}
			return nil
		}},
		{name: "delete after TTL", within: testInterval, write: func(srv *chitchat.Server) error {
			if srv.DeleteAfterTTL(GossipKey(1)) != nil {
				return fmt.Errorf("no key to delete")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newNetwork(t)
				a, b, _, evB := joinedPair(t, net)
				srv := a.Server()
				if err := tt.write(srv); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.within)
				synctest.Wait()
				ns, _ := srv.NodeState(srv.Self())
				if v, ok := ns.GetVersioned(GossipKey(1)); !ok || v.Status != chitchat.StatusSet || v.Value != kv(t, testInfo(1)).Value {
					t.Errorf("own entry after %v = %+v (present %v), want it restored", tt.within, v, ok)
				}
				if got := a.Stats().SelfRestored; got != 1 {
					t.Errorf("SelfRestored = %d, want 1", got)
				}
				// chitchat pushes writes at once, the forged one and its
				// undoing alike: the peer may see the forgery for an
				// instant, and ends with the real entry.
				time.Sleep(3 * testInterval)
				synctest.Wait()
				drain(evB)
				peersOf(t, b, testInfo(1))
				if got := a.Stats().SelfRestored; got != 1 {
					t.Errorf("SelfRestored = %d after the peer synced, want still 1", got)
				}
			})
		})
	}
}

// drain discards the events already delivered.
func drain(ch <-chan TopologyEvent) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
