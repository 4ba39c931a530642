package overlay_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/overlay"
)

// A gossip value as zlayer-overlay (Rust) writes it for worker 42 is
// decoded, converted to a WireGuard peer and rendered for wg-quick.
func ExampleBuild() {
	const fromRust = "eyJub2RlX2lkIjo0Miwid2dfcHVia2V5IjoiaFNEd0NZa3dwMVIwaTMzY3RENzNXZzJfT2cwbU9CcjA2NlNwanFxYlRtbyIsIndnX2VuZHBvaW50IjoiMTI3LjAuMC4xOjUxODIwIiwib3ZlcmxheV9pcCI6IjEwLjAuMC4xIiwibGFiZWxzIjp7fX0"
	info, err := overlay.DecodeValue(fromRust)
	if err != nil {
		panic(err)
	}
	garbage := overlay.PeerInfo{NodeID: 43} // no key, no addresses
	peers, skipped := overlay.Build([]overlay.PeerInfo{info, garbage}, overlay.BuildOptions{
		PersistentKeepalive:    25 * time.Second,
		AllowLoopbackEndpoints: true, // the Rust worker runs on this host: its endpoint is 127.0.0.1
	})
	for _, s := range skipped {
		fmt.Println("skipped", s.Key, s.Reason)
	}
	fmt.Print(overlay.RenderWGQuick(overlay.Config{
		ListenPort: 51820,
		Addresses:  []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")},
		Peers:      peers,
	}, true))
	// Output:
	// skipped worker:43 malformed
	// [Interface]
	// # PrivateKey = (omitted)
	// ListenPort = 51820
	// Address = 10.0.0.2/32
	//
	// [Peer]
	// PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=
	// Endpoint = 127.0.0.1:51820
	// AllowedIPs = 10.0.0.1/32
	// PersistentKeepalive = 25
}

// A public key is accepted in any base64 spelling and written in the one
// each consumer expects.
func ExampleParseKey() {
	k, err := overlay.ParseKey("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo") // the seed's spelling
	if err != nil {
		panic(err)
	}
	fmt.Println(k)             // wg, wg-quick
	fmt.Println(k.URLString()) // PeerInfo.wg_pubkey
	fmt.Println(k.Hex())       // UAPI
	// Output:
	// hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=
	// hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo
	// 8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a
}

// Two workers on one machine gossip, each configures the other as a
// WireGuard peer, and TCP between their overlay addresses goes through the
// tunnel (userspace WireGuard: no root needed).
func ExampleStartMesh() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loopback := netip.MustParseAddr("127.0.0.1")
	gossip := overlay.GossipConfig{
		ClusterID:      "prod",
		ListenAddr:     netip.AddrPortFrom(loopback, 0), // port 0: a free port
		GossipInterval: 100 * time.Millisecond,
	}
	var workers []*overlay.Mesh
	for id := range uint64(2) {
		m, err := overlay.StartMesh(ctx, overlay.MeshConfig{
			NodeID:       id + 1,
			OverlayIP:    netip.AddrFrom4([4]byte{10, 200, 0, byte(id + 1)}),
			EndpointAddr: loopback, // where peers reach the WireGuard port
			ListenAddr:   loopback,
			// Every worker runs on this host: accept loopback endpoints.
			AllowLoopbackEndpoints: true,
		}, gossip)
		if err != nil {
			log.Fatal(err)
		}
		defer m.Close()
		workers = append(workers, m)
		gossip.Seeds = []string{m.Pool().Server().Self().Addr.String()} // the next worker joins this one
	}
	for _, m := range workers {
		peers, events, stop := m.Pool().Subscribe()
		for len(peers) == 0 {
			e := <-events // Joined, Updated or Left
			peers = append(peers, e.Peer)
		}
		stop()
		fmt.Printf("worker %d has peer %d at %v\n", m.Pool().Self().NodeID, peers[0].NodeID, peers[0].OverlayIP)
	}

	ln, err := workers[1].Listen("tcp", ":8080") // on 10.200.0.2:8080, reachable through the tunnel only
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "worker 2 got %s", line)
	}()
	c, err := workers[0].Dial(ctx, "tcp", "10.200.0.2:8080")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello")
	reply, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(reply)
	// Output:
	// worker 1 has peer 2 at 10.200.0.2
	// worker 2 has peer 1 at 10.200.0.1
	// worker 2 got hello
}
