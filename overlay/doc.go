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
// Two workers on one machine (this is ExampleStartMesh, run by the tests; in
// production EndpointAddr is the address peers reach, and ListenPort the
// WireGuard port, 51820 by default):
//
//	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//	defer cancel()
//	loopback := netip.MustParseAddr("127.0.0.1")
//	gossip := overlay.GossipConfig{
//		ClusterID:      "prod",
//		ListenAddr:     netip.AddrPortFrom(loopback, 0), // port 0: a free port
//		GossipInterval: 100 * time.Millisecond,
//	}
//	var workers []*overlay.Mesh
//	for id := range uint64(2) {
//		m, err := overlay.StartMesh(ctx, overlay.MeshConfig{
//			NodeID:       id + 1,
//			OverlayIP:    netip.AddrFrom4([4]byte{10, 200, 0, byte(id + 1)}),
//			EndpointAddr: loopback, // where peers reach the WireGuard port
//			ListenAddr:   loopback,
//			// Every worker runs on this host: accept loopback endpoints.
//			AllowLoopbackEndpoints: true,
//		}, gossip)
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer m.Close()
//		workers = append(workers, m)
//		gossip.Seeds = []string{m.Pool().Server().Self().Addr.String()} // the next worker joins this one
//	}
//	for _, m := range workers {
//		peers, events, stop := m.Pool().Subscribe()
//		for len(peers) == 0 {
//			e := <-events // Joined, Updated or Left
//			peers = append(peers, e.Peer)
//		}
//		stop()
//		fmt.Printf("worker %d has peer %d at %v\n", m.Pool().Self().NodeID, peers[0].NodeID, peers[0].OverlayIP)
//	}
//
//	ln, err := workers[1].Listen("tcp", ":8080") // on 10.200.0.2:8080, reachable through the tunnel only
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer ln.Close()
//	go func() {
//		c, err := ln.Accept()
//		if err != nil {
//			return
//		}
//		defer c.Close()
//		line, _ := bufio.NewReader(c).ReadString('\n')
//		fmt.Fprintf(c, "worker 2 got %s", line)
//	}()
//	c, err := workers[0].Dial(ctx, "tcp", "10.200.0.2:8080")
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//	fmt.Fprintln(c, "hello")
//	reply, _ := bufio.NewReader(c).ReadString('\n')
//	fmt.Print(reply)
//
// Keys: Key is a Curve25519 public key. String is standard base64 (wg and
// wg-quick), URLString base64url without padding (PeerInfo, as the seed),
// Hex the UAPI form; ParseKey accepts either base64 alphabet, padded or
// not. PrivateKey never prints ("(redacted)" with every fmt verb, in slog
// and JSON, and in the Config and MeshConfig that hold one): Base64 and Hex
// are the explicit ways out. Key files are created atomically (mode 0600)
// and a key file others may read is used with a warning, as wg does.
package overlay
