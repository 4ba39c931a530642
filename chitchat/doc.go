// Package chitchat is a gossip library: cluster membership, failure detection
// and a replicated per-node key-value store, ported from Quickwit's chitchat
// (v0.10.1) to Go.
//
// Every node owns a key-value map. Each write on the owner gets the next
// version of that node (1, 2, 3...). Nodes reconcile with Scuttlebutt
// anti-entropy, one handshake at a time:
//
//	A ── Syn{cluster, digest of A} ─────────────▶ B
//	A ◀── SynAck{digest of B, delta: what A lacks} ── B
//	A ── Ack{delta: what B lacks} ──────────────▶ B
//
// A digest says, for every node the sender knows, its heartbeat, its last
// garbage-collected version and its max version. A delta carries, for the
// nodes the peer is behind on, every entry above the peer's max version, in
// version order and within the datagram budget (65,507 bytes by default),
// stalest nodes first. Deletions are tombstones, collected after
// Config.MarkedForDeletionGracePeriod; a peer that was away for longer is
// told to reset that node's state and receives it whole.
//
// Heartbeats travel only in digests. The failuredetector package turns their
// arrival times into liveness; a dead node is left out of digests after half
// of the dead-node grace period and forgotten after all of it, and its last
// heartbeat is remembered so that stale gossip cannot resurrect it.
//
// The package has two layers. Engine is the state machine: no goroutines,
// no clock, no sockets; the caller passes the time and a *rand.Rand in and
// sends what comes out, so tests and simulations are deterministic. Server
// drives an Engine over a transport.Transport with a gossip ticker, and is
// what applications use (this is Example, run by the tests):
//
//	network, _ := transport.NewNetwork(transport.NetworkConfig{})
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	seed := netip.MustParseAddrPort("10.0.0.1:7280")
//	var nodes []*chitchat.Server
//	for i, addr := range []netip.AddrPort{seed, netip.MustParseAddrPort("10.0.0.2:7280")} {
//		srv, err := chitchat.Spawn(ctx, chitchat.Config{
//			// A restarted node takes a larger Generation: its start time.
//			ID:             chitchat.NodeID{Name: fmt.Sprintf("node-%d", i+1), Generation: uint64(time.Now().Unix()), Addr: addr},
//			ClusterID:      "my-cluster",
//			GossipInterval: 100 * time.Millisecond,
//			Seeds:          []string{seed.String()},
//		}, network)
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer srv.Shutdown()
//		nodes = append(nodes, srv)
//	}
//	nodes[0].Set("role", "indexer")
//	for live := range nodes[1].WatchLiveNodes(ctx) { // the current value, then each change
//		if len(live) == 2 && live[0].ContainsKey("role") {
//			role, _ := live[0].Get("role")
//			fmt.Println(live[0].ID().Name, "role:", role)
//			break
//		}
//	}
//
// With real sockets, pass transport.UDP{} instead of the in-memory network.
//
// A restarted node must use a larger Generation: with the same NodeID, peers
// would push the previous incarnation's keys back into its state.
package chitchat
