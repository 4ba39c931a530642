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
