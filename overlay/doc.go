// Package overlay builds a WireGuard mesh from chitchat gossip: each worker
// publishes its WireGuard key, endpoint and overlay address, and every
// worker configures the others as peers.
//
// It is a Go port of the gossip pool of zlayer-overlay (Rust), and speaks
// its format: one key per worker,
//
//	worker:<node_id> → base64url-no-pad(JSON(PeerInfo))
//	JSON: {"node_id":42,"wg_pubkey":"…","wg_endpoint":"203.0.113.7:51820","overlay_ip":"10.200.0.42","labels":{}}
//
// so Go and Rust workers can share a cluster.
//
// The package has three layers; use the one you need.
//
// Pure conversions, no I/O (modeled on tailscale's nmcfg):
//
//	chitchat.Snapshot ─FromSnapshot─▶ []PeerInfo ─Build─▶ []Peer ─┬─ RenderWGQuick (wg-quick file)
//	                                                              ├─ RenderUAPI    (full IpcSet body)
//	                          DiffPeers(old, new []Peer) ─ Diff ──┴─ RenderUAPIDiff (reconcile body)
//
// Entries that cannot be used are skipped and reported (Skipped), never an
// error for the whole set. An entry is bound to the chitchat node that
// publishes it, and the first live claimant of a worker id, overlay IP or
// public key keeps it: a newcomer claiming what an established worker holds
// is quarantined until that worker leaves or dies (claims.go).
//
// Pool: a gossip pool over a chitchat node (StartPool spawns one, NewPool
// uses yours). Peers returns the live workers' entries; Subscribe delivers
// TopologyEvents (Joined, Updated, Left) driven by key changes and by
// liveness, without polling: an entry change is reported as soon as the
// gossip exchange that carries it is applied, a deletion or a death at the
// end of the next gossip round. AnnounceSelf republishes this worker's
// entry after a key rotation or an endpoint change.
//
// Mesh: a node with a WireGuard device whose peers are reconciled from the
// pool by diffs, with Dial and Listen on its overlay address and RotateKey.
// MeshConfig.Device chooses the device (device.go): DeviceNetstack,
// wireguard-go over a gVisor netstack (the default: no root, no kernel
// module; only this process reaches the overlay); DeviceTUN, wireguard-go
// on a TUN interface with the node's addresses and a route per peer, set
// through netlink (every process of the host reaches the overlay); or
// DeviceKernel, the kernel's WireGuard through wgctrl. A node may have an
// overlay address per family (dual-stack). Each mesh answers and sends
// health probes through the tunnel (probe.go); Stats reports them with the
// device's handshakes and byte counts.
//
//	m, err := overlay.StartMesh(ctx, overlay.MeshConfig{
//		NodeID:       1,
//		OverlayIP:    netip.MustParseAddr("10.200.0.1"),
//		EndpointAddr: netip.MustParseAddr("203.0.113.7"),
//		ListenPort:   51820,
//	}, overlay.GossipConfig{
//		ClusterID:  "prod",
//		ListenAddr: netip.MustParseAddrPort("203.0.113.7:7946"),
//		Seeds:      []string{"203.0.113.8:7946"},
//	})
//	ln, err := m.Listen("tcp", ":8080")                     // on 10.200.0.1:8080
//	c, err := m.Dial(ctx, "tcp", "10.200.0.2:8080")         // through the tunnel
//
// Keys: Key is a Curve25519 public key. String is standard base64 (wg and
// wg-quick), URLString base64url without padding (PeerInfo, as the seed),
// Hex the UAPI form; ParseKey accepts either base64 alphabet, padded or
// not. PrivateKey never prints ("(redacted)" with every fmt verb, in slog
// and JSON, and in the Config and MeshConfig that hold one): Base64 and Hex
// are the explicit ways out. Key files are created atomically (mode 0600)
// and a key file others may read is used with a warning, as wg does.
package overlay
