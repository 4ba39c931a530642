package chitchat_test

// Real-UDP tests on 127.0.0.1. They run outside synctest (sockets are not
// durably blocking), use only free ports, never sleep, and bound every wait
// by a wall-clock deadline: a socket read deadline or a context timeout on
// the live-nodes watch.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// freeUDPPorts returns n distinct free UDP ports on 127.0.0.1 by binding
// port 0 n times and releasing the sockets. A Config needs its ID.Addr
// before the socket is bound, hence this; another process could take a
// port in between, which would make the test fail at New, not hang.
func freeUDPPorts(t *testing.T, n int) []uint16 {
	t.Helper()
	var ports []uint16
	var conns []*net.UDPConn
	for range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, uint16(c.LocalAddr().(*net.UDPAddr).Port))
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

func udpLoopback(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// udpServerAndProbe spawns a server named name on a free loopback UDP port
// (MaxDatagramSize budget, 0 for the default) and opens a raw socket to
// probe it, with a 10 s read deadline; both close at the end of the test.
func udpServerAndProbe(t *testing.T, name string, budget int) (*chitchat.Server, *net.UDPConn) {
	t.Helper()
	ports := freeUDPPorts(t, 1)
	srv, err := chitchat.Spawn(t.Context(), chitchat.Config{
		ID:              chitchat.NodeID{Name: name, Addr: udpLoopback(ports[0])},
		ClusterID:       "cluster_id",
		MaxDatagramSize: budget,
	}, transport.UDP{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if err := raw.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return srv, raw
}

// T96 test_udp_transport_ignore_invalid_payload: junk, then a valid Syn,
// sent to a Server on real UDP. The transport is bytes-level in Go, so the
// server is what drops (and counts) the junk; it still answers the Syn.
func TestT96_UDPIgnoreInvalidPayload(t *testing.T) {
	srv, raw := udpServerAndProbe(t, "node-udp", 0)
	to := srv.LocalAddr()
	if _, err := raw.WriteToUDPAddrPort([]byte("junk"), to); err != nil {
		t.Fatal(err)
	}
	syn := &chitchat.Syn{ClusterID: "cluster_id"}
	if _, err := raw.WriteToUDPAddrPort(chitchat.EncodeMessage(syn), to); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, transport.MaxPayloadSize)
	for {
		n, from, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no SynAck from the server: %v", err)
		}
		m, err := chitchat.DecodeMessage(buf[:n])
		if err != nil {
			t.Fatalf("undecodable reply from %v: %v", from, err)
		}
		if _, ok := m.(*chitchat.SynAck); ok {
			if from.Port() != to.Port() {
				t.Errorf("SynAck from %v, want %v", from, to)
			}
			break
		}
	}
	// The server processes datagrams in order: the junk came first.
	st := srv.Stats()
	if st.DecodeErrors != 1 {
		t.Errorf("DecodeErrors = %d, want 1", st.DecodeErrors)
	}
	if st.MessagesReceived != 2 {
		t.Errorf("MessagesReceived = %d, want 2 (junk and Syn)", st.MessagesReceived)
	}
}

// TestServerRealUDPCluster runs 5 Servers on 127.0.0.1 over real UDP,
// seeded with node 0 and gossiping every 50 ms: they converge to 5 live
// nodes and a key set on one reaches all, within a 20 s wall-clock
// deadline.
func TestServerRealUDPCluster(t *testing.T) {
	const n = 5
	ports := freeUDPPorts(t, n)
	var srvs []*chitchat.Server
	for i := range n {
		srv, err := chitchat.Spawn(t.Context(), chitchat.Config{
			ID:             chitchat.NodeID{Name: fmt.Sprintf("node-%d", i), Addr: udpLoopback(ports[i])},
			ClusterID:      "udp-test",
			GossipInterval: 50 * time.Millisecond,
			Seeds:          []string{udpLoopback(ports[0]).String()},
			RandSeed:       uint64(i + 1),
		}, transport.UDP{})
		if err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
	}
	defer func() {
		for i, srv := range srvs {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	// waitAll waits until every node's watch yields a value satisfying ok.
	waitAll := func(what string, ok func([]*chitchat.NodeState) bool) {
		t.Helper()
		for i, srv := range srvs {
			found := false
			for v := range srv.WatchLiveNodes(ctx) {
				if ok(v) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("node %d: %s not reached within the deadline (%v)", i, what, ctx.Err())
			}
		}
		t.Logf("%s after %v (wall clock)", what, time.Since(start))
	}
	waitAll("5 live nodes", func(v []*chitchat.NodeState) bool { return len(v) == n })

	if err := srvs[3].Set("color", "blue"); err != nil {
		t.Fatal(err)
	}
	waitAll("key seen everywhere", func(v []*chitchat.NodeState) bool {
		for _, ns := range v {
			if ns.ID() == srvs[3].Self() {
				val, ok := ns.Get("color")
				return ok && val == "blue"
			}
		}
		return false
	})
}

// A node configured with port 0 advertises the port its socket bound.
func TestServerAdvertisesBoundPort(t *testing.T) {
	cfg := chitchat.Config{
		ID:        chitchat.NodeID{Name: "ephemeral", Addr: netip.MustParseAddrPort("127.0.0.1:0")},
		ClusterID: "c",
	}
	s, err := chitchat.New(cfg, transport.UDP{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if got, bound := s.Self().Addr, s.LocalAddr(); got.Port() == 0 || got != bound {
		t.Errorf("Self().Addr = %v, want the bound address %v", got, bound)
	}
}
