package chitchat

// Server tests that need unexported hooks: T89 increments the
// self heartbeat by hand, T91–T93 call the target selection with an RNG
// whose draws are 0, T95 panics inside message processing through
// testHookProcess. Internal tests cannot import internal/chitchattest (it
// imports this package), so they drive transport.Network directly. Helper
// names carry an "srvInt" prefix to stay clear of other internal tests.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gossipkit/chitchat-go/transport"
)

// srvIntForTest is upstream's ChitchatConfig::for_test(port).
func srvIntForTest(port uint16) Config {
	return Config{
		ID:                           NodeID{Name: fmt.Sprintf("node-%d", port), Addr: srvIntAddr(port)},
		ClusterID:                    "default-cluster",
		GossipInterval:               50 * time.Millisecond,
		MarkedForDeletionGracePeriod: 10000 * time.Second,
		RandSeed:                     uint64(port),
	}
}

func srvIntAddr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

func srvIntNetwork(t *testing.T) *transport.Network {
	t.Helper()
	n, err := transport.NewNetwork(transport.NetworkConfig{MTU: MaxDatagramSize, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type srvIntDatagram struct {
	from netip.AddrPort
	msg  Message
}

// srvIntRawSocket opens addr and returns a channel of the messages it
// receives; the socket is closed (and the goroutine ends) with the test.
func srvIntRawSocket(t *testing.T, n *transport.Network, addr netip.AddrPort) (transport.Conn, <-chan srvIntDatagram) {
	t.Helper()
	conn, err := n.Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan srvIntDatagram, 256)
	done := make(chan struct{})
	go func() {
		buf := make([]byte, transport.MaxPayloadSize)
		for {
			k, from, err := conn.Recv(buf)
			if err != nil {
				return
			}
			m, err := DecodeMessage(buf[:k])
			if err != nil {
				continue
			}
			select {
			case ch <- srvIntDatagram{from, m}:
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); conn.Close() })
	return conn, ch
}

// srvIntNext returns the next message of type typ within timeout (virtual).
func srvIntNext(ch <-chan srvIntDatagram, typ MessageType, timeout time.Duration) (srvIntDatagram, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case d := <-ch:
			if d.msg.Type() == typ {
				return d, true
			}
		case <-timer.C:
			return srvIntDatagram{}, false
		}
	}
}

// T89 test_heartbeat. Upstream asserts heartbeat 2, relying on the server
// loop not having run yet; we assert that the peer recorded the heartbeat
// the server had when it created the Syn.
func TestT89_Heartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := srvIntNetwork(t)
		peerCfg := srvIntForTest(1)
		raw, in := srvIntRawSocket(t, n, peerCfg.ID.Addr)
		peer, err := NewEngine(peerCfg, rand.New(rand.NewPCG(1, 1)), nil)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := Spawn(t.Context(), srvIntForTest(2), n)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		if err := srv.Set("key", "value"); err != nil {
			t.Fatal(err)
		}

		var hbAtSyn uint64
		srv.WithEngine(func(e *Engine) {
			now := time.Now()
			e.selfState().incHeartbeat()
			hbAtSyn = e.selfState().heartbeat
			synAck := peer.Process(now, e.CreateSyn(now))
			e.Process(now, synAck) // the Ack is dropped, as upstream
		})
		ns, ok := peer.NodeState(srv.Self())
		if !ok {
			t.Fatal("the peer did not learn the server from its Syn")
		}
		if ns.Heartbeat() != hbAtSyn {
			t.Errorf("peer's view of the server's heartbeat = %d, want %d (at Syn creation)", ns.Heartbeat(), hbAtSyn)
		}

		// The server now knows the peer and gossips with it.
		syn, ok := srvIntNext(in, TypeSyn, time.Second)
		if !ok {
			t.Fatal("no Syn from the server within 1s")
		}
		if syn.from != srv.Self().Addr {
			t.Errorf("Syn from %v, want %v", syn.from, srv.Self().Addr)
		}
		reply := peer.Process(time.Now(), syn.msg)
		if err := raw.Send(syn.from, EncodeMessage(reply)); err != nil {
			t.Fatal(err)
		}
		ack, ok := srvIntNext(in, TypeAck, time.Second)
		if !ok {
			t.Fatal("no Ack from the server within 1s")
		}
		var got *NodeDelta
		for i, nd := range ack.msg.(*Ack).Delta.Nodes {
			if nd.ID == srv.Self() {
				got = &ack.msg.(*Ack).Delta.Nodes[i]
			}
		}
		if got == nil {
			t.Fatalf("Ack delta %+v has no node delta for the server", ack.msg.(*Ack).Delta.Nodes)
		}
		if got.LastGCVersion != 0 {
			t.Errorf("server node delta LastGCVersion = %d, want 0", got.LastGCVersion)
		}
		want := []KeyValueMutation{{Key: "key", Value: "value", Version: 1, Status: StatusSet}}
		if diff := cmp.Diff(want, got.KeyValues); diff != "" {
			t.Errorf("server node delta key-values mismatch (-want +got):\n%s", diff)
		}
	})
}

// srvIntZeroRand draws 0 every time (upstream's test RNG for T91–T93).
type srvIntZeroRand struct{}

func (srvIntZeroRand) Float64() float64 { return 0 }
func (srvIntZeroRand) IntN(int) int     { return 0 }

// T91 test_select_nodes_for_gossip, T92 test_gossip_no_dead_node_no_seed_nodes,
// T93 test_gossip_dead_and_seed_node.
func TestT91_T93_SelectNodesForGossip(t *testing.T) {
	a := func(ports ...uint16) []netip.AddrPort {
		var s []netip.AddrPort
		for _, p := range ports {
			s = append(s, srvIntAddr(p))
		}
		return s
	}
	none := netip.AddrPort{}
	tests := []struct {
		name                    string
		peers, live, dead, seed []netip.AddrPort
		wantNodes               []netip.AddrPort
		wantDead, wantSeed      netip.AddrPort
	}{
		{
			name:  "T91 live, dead and a live seed",
			peers: a(1, 2, 3), live: a(1, 2), dead: a(3), seed: a(2),
			wantNodes: a(1, 2), wantDead: srvIntAddr(3), wantSeed: none,
		},
		{
			name:  "T92 no dead node, no seed",
			peers: a(1, 2, 3, 4, 5), live: a(1, 2, 3, 4, 5),
			wantNodes: a(1, 2, 3), wantDead: none, wantSeed: none,
		},
		{
			name:  "T93 dead and seed node",
			peers: a(10, 11, 12, 13, 14), live: a(10), dead: a(11, 12, 13, 14), seed: a(13, 14),
			wantNodes: a(10), wantDead: srvIntAddr(11), wantSeed: srvIntAddr(13),
		},
	}
	eq := cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, dead, seed := selectTargets(srvIntZeroRand{}, tt.peers, tt.live, tt.dead, addrOf, tt.seed, gossipCount)
			if diff := cmp.Diff(tt.wantNodes, nodes, eq); diff != "" {
				t.Errorf("nodes mismatch (-want +got):\n%s", diff)
			}
			if dead != tt.wantDead {
				t.Errorf("dead target = %v, want %v", dead, tt.wantDead)
			}
			if seed != tt.wantSeed {
				t.Errorf("seed target = %v, want %v", seed, tt.wantSeed)
			}
		})
	}
}

// T95 test_panic_shutdown: a panic while processing a message (upstream's
// PanicForTest message) stops the server with an error wrapping
// ErrPanicked.
func TestT95_PanicShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := srvIntNetwork(t)
		raw, _ := srvIntRawSocket(t, n, srvIntAddr(2))
		srv, err := New(srvIntForTest(1), n)
		if err != nil {
			t.Fatal(err)
		}
		srv.testHookProcess = func(m Message) {
			if _, ok := m.(*BadCluster); ok {
				panic("PanicForTest")
			}
		}
		runErr := make(chan error, 1)
		go func() { runErr <- srv.Run(context.Background()) }()

		if err := raw.Send(srv.Self().Addr, EncodeMessage(&BadCluster{})); err != nil {
			t.Fatal(err)
		}
		<-srv.Done()
		for name, err := range map[string]error{"Run": <-runErr, "Err": srv.Err(), "Shutdown": srv.Shutdown()} {
			if !errors.Is(err, ErrPanicked) {
				t.Errorf("%s() = %v, want an error wrapping ErrPanicked", name, err)
				continue
			}
			if !strings.Contains(err.Error(), "chitchat server panicked") {
				t.Errorf("%s() = %q, want it to contain %q", name, err, "chitchat server panicked")
			}
		}
		conn, err := n.Open(srv.Self().Addr)
		if err != nil {
			t.Fatalf("a panicked server did not release its address: %v", err)
		}
		conn.Close()
	})
}
