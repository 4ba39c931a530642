package chitchat_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// Start three nodes, set a key on one, and watch the cluster from another
// until it sees every node live and the key. The nodes talk over an
// in-memory network; use transport.UDP{} for real sockets.
func ExampleServer() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	var nodes []*chitchat.Server
	for i := range 3 {
		addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(7000+i))
		node, err := chitchat.Spawn(context.Background(), chitchat.Config{
			ID:             chitchat.NodeID{Name: fmt.Sprintf("node-%d", i), Addr: addr},
			ClusterID:      "example",
			GossipInterval: 20 * time.Millisecond,
			Seeds:          []string{"127.0.0.1:7000"},
		}, network)
		if err != nil {
			log.Fatal(err)
		}
		defer node.Shutdown()
		nodes = append(nodes, node)
	}
	nodes[0].Set("role", "indexer")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for live := range nodes[2].WatchLiveNodes(ctx) { // the current value, then each change
		if len(live) == 3 && live[0].ContainsKey("role") { // live nodes are in ID order
			role, _ := live[0].Get("role")
			fmt.Printf("live nodes: %d, %s role: %s\n", len(live), live[0].ID().Name, role)
			break
		}
	}
	// Output: live nodes: 3, node-0 role: indexer
}

// Two nodes on an in-memory network (use transport.UDP{} for real sockets):
// a key set on one reaches the other, which sees both nodes live.
func Example() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seed := netip.MustParseAddrPort("10.0.0.1:7280")
	var nodes []*chitchat.Server
	for i, addr := range []netip.AddrPort{seed, netip.MustParseAddrPort("10.0.0.2:7280")} {
		srv, err := chitchat.Spawn(ctx, chitchat.Config{
			// A restarted node takes a larger Generation: its start time.
			ID:             chitchat.NodeID{Name: fmt.Sprintf("node-%d", i+1), Generation: uint64(time.Now().Unix()), Addr: addr},
			ClusterID:      "my-cluster",
			GossipInterval: 100 * time.Millisecond,
			Seeds:          []string{seed.String()},
		}, network)
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Shutdown()
		nodes = append(nodes, srv)
	}
	nodes[0].Set("role", "indexer")
	for live := range nodes[1].WatchLiveNodes(ctx) { // the current value, then each change
		if len(live) == 2 && live[0].ContainsKey("role") {
			role, _ := live[0].Get("role")
			fmt.Println(live[0].ID().Name, "role:", role)
			break
		}
	}
	// Output: node-1 role: indexer
}
