package catalog_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// Two nodes: node-1 announces a web service, node-0 finds it, passing, by
// blocking on its catalog until the service appears. The nodes talk over an
// in-memory network; use transport.UDP{} for real sockets.
func ExampleAgent() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var agents []*catalog.Agent
	for i := range 2 {
		srv, err := chitchat.Spawn(ctx, chitchat.Config{
			ID:             chitchat.NodeID{Name: fmt.Sprintf("node-%d", i), Addr: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 7000+i))},
			ClusterID:      "example",
			GossipInterval: 20 * time.Millisecond,
			Seeds:          []string{"127.0.0.1:7000"},
		}, network)
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Shutdown()
		agent, err := catalog.New(catalog.Config{}, srv)
		if err != nil {
			log.Fatal(err)
		}
		go agent.Run(ctx)
		agents = append(agents, agent)
	}
	if err := agents[1].Register(catalog.Service{Name: "web", Port: 8080, Tags: []string{"v1"}}); err != nil {
		log.Fatal(err)
	}

	web := func(v *catalog.View) uint64 { return v.ServiceIndex("web", true) }
	for v := agents[0].View(); ctx.Err() == nil; v = agents[0].Wait(ctx, web(v), web) {
		if in := v.Service("web").Select([]string{"v1"}, true); len(in) > 0 {
			fmt.Printf("web: %s %v:%d %s\n", in[0].Node.Name(), in[0].Addr(), in[0].Service.Port, in[0].Status())
			break
		}
	}
	// Output: web: node-1 127.0.0.1:8080 passing
}
