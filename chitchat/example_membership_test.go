package chitchat_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// A node that knows nobody joins a running cluster: Join runs one stream
// exchange with each address and returns how many answered; the exchange
// brings the cluster's whole state at once. README's "Use it" shows this
// example.
func ExampleServer_Join() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spawn := func(name, addr string) *chitchat.Server {
		cfg := chitchat.DefaultLocalConfig()
		cfg.ID = chitchat.NodeID{Name: name, Addr: netip.MustParseAddrPort(addr)}
		cfg.ClusterID = "example"
		node, err := chitchat.Spawn(ctx, cfg, network)
		if err != nil {
			log.Fatal(err)
		}
		return node
	}
	a := spawn("a", "10.0.0.1:7280") // the running cluster
	defer a.Shutdown()
	a.Set("role", "indexer")
	b := spawn("b", "10.0.0.2:7280") // no seeds: it knows nobody yet
	defer b.Shutdown()

	n, err := b.Join(ctx, []string{"10.0.0.1:7280"})
	if err != nil {
		log.Fatal(err)
	}
	ns, _ := b.NodeState(a.Self()) // a's state came with the exchange
	role, _ := ns.Get("role")
	fmt.Printf("answered: %d, a's role: %s\n", n, role)
	// Output: answered: 1, a's role: indexer
}

// Membership events, in order, as a memberlist or serf user watches them:
// b joins, writes a key, leaves gracefully; c joins and is killed. The
// loop reacts to each event, so the order printed is the order of events.
// README's "Use it" shows this example.
func ExampleServer_Events() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	spawn := func(name, addr string) *chitchat.Server {
		cfg := chitchat.DefaultLocalConfig() // 100 ms rounds
		cfg.ID = chitchat.NodeID{Name: name, Addr: netip.MustParseAddrPort(addr)}
		cfg.ClusterID = "example"
		cfg.Seeds = []string{"10.0.0.1:7280"}
		node, err := chitchat.Spawn(ctx, cfg, network)
		if err != nil {
			log.Fatal(err)
		}
		return node
	}
	a := spawn("a", "10.0.0.1:7280")
	defer a.Shutdown()
	b := spawn("b", "10.0.0.2:7280")
	defer b.Shutdown()
	var c *chitchat.Server

	for ev := range a.Events(ctx) {
		fmt.Println(ev.Kind, ev.ID.Name)
		switch ev.Kind {
		case chitchat.EventJoined:
			if ev.ID.Name == "b" {
				b.Set("role", "indexer") // pushed to a at once
			} else {
				c.Shutdown() // killed: no leave
			}
		case chitchat.EventUpdated:
			b.Leave(ctx) // returns once a holds the leave
		case chitchat.EventLeft:
			c = spawn("c", "10.0.0.3:7280")
		}
		if ev.Kind == chitchat.EventDied {
			break
		}
	}
	// Output:
	// Joined b
	// Updated b
	// Left b
	// Joined c
	// Died c
}

// The presets set timings for a kind of network (as memberlist's); set the
// node's identity, the cluster and the seeds on top. README's "Use it"
// shows this example.
func ExampleDefaultLANConfig() {
	for _, p := range []struct {
		name string
		cfg  chitchat.Config
	}{
		{"LAN", chitchat.DefaultLANConfig()},
		{"WAN", chitchat.DefaultWANConfig()},
		{"local", chitchat.DefaultLocalConfig()},
	} {
		fmt.Printf("%-5s rounds %v, datagrams ≤ %d bytes, phi %v\n",
			p.name, p.cfg.GossipInterval, p.cfg.MaxDatagramSize, p.cfg.FailureDetector.PhiThreshold)
	}
	cfg := chitchat.DefaultLANConfig()
	cfg.ID = chitchat.NodeID{Name: "node-1", Addr: netip.MustParseAddrPort("10.0.0.1:7280")}
	cfg.ClusterID = "prod"
	cfg.Seeds = []string{"10.0.0.1:7280", "10.0.0.2:7280"}
	fmt.Println("valid:", cfg.Validate() == nil)
	// Output:
	// LAN   rounds 500ms, datagrams ≤ 1400 bytes, phi 8
	// WAN   rounds 2s, datagrams ≤ 1200 bytes, phi 12
	// local rounds 100ms, datagrams ≤ 65507 bytes, phi 8
	// valid: true
}

// Rotate the gossip key of a running, encrypted cluster from one node, as
// `serf keys` does: install the new key everywhere, use it everywhere,
// remove the old one everywhere. Each call returns once every live node
// has answered. README's "Use it" shows this example.
func ExampleServer_InstallKey() {
	network, _ := transport.NewNetwork(transport.NetworkConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var oldKey, newKey chitchat.Key
	rand.Read(oldKey[:])
	rand.Read(newKey[:])
	var nodes []*chitchat.Server
	var rings []*chitchat.Keyring
	for i := range 3 {
		ring, _ := chitchat.NewKeyring(oldKey) // one keyring per node
		cfg := chitchat.DefaultLocalConfig()
		cfg.ID = chitchat.NodeID{Name: fmt.Sprintf("node-%d", i), Addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(7000+i))}
		cfg.ClusterID = "example"
		cfg.Seeds = []string{"10.0.0.1:7000"}
		cfg.Keyring = ring
		node, err := chitchat.Spawn(ctx, cfg, network)
		if err != nil {
			log.Fatal(err)
		}
		defer node.Shutdown()
		nodes, rings = append(nodes, node), append(rings, ring)
	}
	for live := range nodes[0].WatchLiveNodes(ctx) {
		if len(live) == 3 {
			break
		}
	}

	install, err := nodes[0].InstallKey(ctx, newKey)
	if err != nil {
		log.Fatal(err)
	}
	use, err := nodes[0].UseKey(ctx, newKey)
	if err != nil {
		log.Fatal(err)
	}
	remove, err := nodes[0].RemoveKey(ctx, oldKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("install %d/%d, use %d/%d, remove %d/%d nodes\n",
		install.Done, install.Nodes, use.Done, use.Nodes, remove.Done, remove.Nodes)
	keys := rings[2].Keys()
	fmt.Println("node-2 holds only the new key:", len(keys) == 1 && keys[0] == newKey)
	// Output:
	// install 3/3, use 3/3, remove 3/3 nodes
	// node-2 holds only the new key: true
}
