// Package chitchat is a gossip library: cluster membership, failure detection
// and a replicated per-node key-value store, ported from Quickwit's chitchat
// (v0.10.1) to Go. It speaks protocol version 1 (docs/PROTOCOL.md), which
// does not interoperate with upstream chitchat or with version 0: their
// datagrams are refused with ErrVersion and counted (Stats.VersionMismatch).
//
// Every node owns a key-value map. Each write on the owner gets the next
// version of that node (1, 2, 3...). Nodes reconcile with Scuttlebutt
// anti-entropy: every gossip interval a node starts a handshake with three
// live peers (sometimes also a dead one and a seed):
//
//	A ── Syn{cluster, digest of A} ───────────────────────────▶ B
//	A ◀── SynAck{digest of B, delta: what A lacks, echo of A} ── B
//	A ── Ack{delta: what B lacks} ────────────────────────────▶ B
//
// A digest fits one datagram (Config.MaxDatagramSize, 1,400 bytes in
// DefaultLANConfig) whatever the cluster's size. It lists a few nodes explicitly (the
// sender's own heartbeat, last garbage-collected version and max version,
// nodes it wants, nodes that just changed) and summarizes a run of buckets
// of a ring on which every node has a place (a hash of its NodeID): a
// count, a hash of the nodes' states and the low bits of their heartbeats.
// Successive Syns cover the whole ring; a bucket whose summaries differ is
// answered with every node listed. A delta carries, for the nodes the peer
// is behind on, every entry above the peer's max version, in version order
// and within the datagram budget, stalest nodes first. The echo is the
// responder's view of A's own state, with a fingerprint of its keys.
// Deletions are tombstones, collected after
// Config.MarkedForDeletionGracePeriod; a peer that was away for longer is
// told to reset that node's state and receives it whole.
//
// Two mechanisms speed this up, and neither is needed for correctness.
// Stream exchanges (the same three messages with whole digests, over TCP
// on the gossip port) carry bulk state: at start with a seed, on
// Server.Join, every Config.StreamSyncInterval, and with a peer a datagram
// could not fully serve. Push sends news at once (a write, a leave, a
// node's announcement of itself, a first observed death) down trees cut
// from the ring, each node receiving it once (Config.DisablePush turns it
// off).
//
// The failuredetector package turns evidence of life (a heartbeat that
// rose, a datagram from the node itself, an alive notice) into liveness,
// against a prior learned from every node's intervals, so a new node is
// judged from its first evidence. A dead node is left out of digests after
// half of the dead-node grace period and forgotten after all of it, and its
// last heartbeat is remembered so that stale gossip cannot resurrect it.
// The owner is authoritative about itself: a claim that it has a heartbeat,
// a version or keys it never produced is refuted, or, if too large to
// outbid, makes it reincarnate under a new generation.
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
// A restarted node should use a larger Generation: with the same NodeID,
// peers hold the previous incarnation's keys and versions, which the new
// incarnation must first refute (docs/PROTOCOL.md §17), resetting every
// holder, before its own writes replicate.
package chitchat
