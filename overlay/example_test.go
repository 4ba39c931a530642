package overlay_test

import (
	"fmt"
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
