package chitchat_test

// Upstream tests/perf_test.rs (T107–T117): real Servers on the
// in-memory network (MTU 65,507) inside a synctest bubble, so every figure
// is in virtual time. Node i is ("node_i", 0, 127.0.0.1:10000+i), cluster
// "default-cluster", gossip every 300 ms, failure detector {initial
// interval 300 ms, other defaults: phi 8, window 1000, max interval 10 s,
// grace 24 h}, tombstones kept 10,000 s, seeds ["127.0.0.1:10000"], no
// initial keys. Upstream "kills" a node by dropping its handle; we call
// Shutdown. Message drops use NetworkConfig.DropProbability, which drops a
// datagram before it is counted, as upstream's drop_message wrapper.
//
// Every measured figure is logged on one line starting with "PERF T<n>",
// e.g. "PERF T110 n=100 detection=2.7s", for grep.

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
	"github.com/gossipkit/chitchat-go/transport"
)

// perfConvergeTimeout bounds (in virtual time) the waits for a cluster to
// converge before a measurement.
const perfConvergeTimeout = 5 * time.Minute

func perfConfig(id chitchat.NodeID) chitchat.Config {
	cfg := chitchat.Config{
		ID:                           id,
		ClusterID:                    "default-cluster",
		GossipInterval:               300 * time.Millisecond,
		MarkedForDeletionGracePeriod: 10000 * time.Second,
	}
	cfg.FailureDetector.InitialInterval = 300 * time.Millisecond
	return cfg
}

// perfCluster spawns n perf nodes on a network dropping each datagram with
// probability drop.
func perfCluster(t *testing.T, n int, drop float64) *chitchattest.Cluster {
	t.Helper()
	c := chitchattest.New(t, chitchattest.Options{
		Network: transport.NetworkConfig{DropProbability: drop},
		Config:  perfConfig,
	})
	for i := range n {
		c.AddNode(fmt.Sprintf("node_%d", i), uint16(10000+i), chitchattest.WithSeeds("127.0.0.1:10000"))
	}
	return c
}

// waitSize is upstream's wait_until(handle, pred) with pred "n nodes": the
// virtual time until node i's watch yields a value of n nodes.
func waitSize(t *testing.T, c *chitchattest.Cluster, i, n int, timeout time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, d, err := c.WaitWatch(ctx, i, func(v []*chitchat.NodeState) bool { return len(v) == n })
	if err != nil {
		t.Fatalf("node %d never saw %d live nodes: %v", i, n, err)
	}
	return d
}

// detectionDelay is upstream's delay_before_detection_sample: spawn n nodes,
// wait until node 1 sees them all, stop the last one, and return the time
// until node 1's watch shows n-1 nodes.
func detectionDelay(t *testing.T, tnum string, n int, drop float64, limit time.Duration) {
	c := perfCluster(t, n, drop)
	conv := waitSize(t, c, 1, n, perfConvergeTimeout)
	c.MustShutdown(n - 1)
	d := waitSize(t, c, 1, n-1, perfConvergeTimeout)
	t.Logf("PERF %s n=%d drop=%v converge=%v detection=%v", tnum, n, drop, conv, d)
	if d >= limit {
		t.Errorf("detection delay %v, want < %v", d, limit)
	}
}

// T107 test_delay_before_dead_detection_10 (upstream uses 40 nodes despite
// the name)
func TestT107_DelayBeforeDeadDetection10(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { detectionDelay(t, "T107", 40, 0, 10*time.Second) })
}

// T108 test_delay_before_dead_detection_20
func TestT108_DelayBeforeDeadDetection20(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { detectionDelay(t, "T108", 20, 0, 10*time.Second) })
}

// T109 test_delay_before_dead_detection_40
func TestT109_DelayBeforeDeadDetection40(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { detectionDelay(t, "T109", 40, 0, 10*time.Second) })
}

// T110 test_delay_before_dead_detection_100
func TestT110_DelayBeforeDeadDetection100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { detectionDelay(t, "T110", 100, 0, 10*time.Second) })
}

// T111 test_delay_before_dead_detection_100_faulty (50% of the datagrams
// dropped)
func TestT111_DelayBeforeDeadDetection100Faulty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { detectionDelay(t, "T111", 100, 0.5, 15*time.Second) })
}

// bandwidth is upstream's test_bandwidth_aux: spawn n nodes, wait until
// every node sees n live, then measure the network's sent bytes and
// messages over 3 s; it returns bytes/s/node and msgs/s/node.
func bandwidth(t *testing.T, n int) (bytesPerNode, msgsPerNode float64) {
	const window = 3 * time.Second
	c := perfCluster(t, n, 0)
	for i := range n {
		waitSize(t, c, i, n, perfConvergeTimeout)
	}
	before := c.Net().Stats()
	time.Sleep(window)
	after := c.Net().Stats()
	secs := float64(n) * window.Seconds()
	return float64(after.SentBytes-before.SentBytes) / secs, float64(after.SentMessages-before.SentMessages) / secs
}

func checkBandwidth(t *testing.T, tnum string, n int, maxBytes float64) {
	b, m := bandwidth(t, n)
	t.Logf("PERF %s n=%d bytes_per_node_s=%.0f msgs_per_node_s=%.1f", tnum, n, b, m)
	if b >= maxBytes {
		t.Errorf("%.0f bytes/s/node, want < %.0f", b, maxBytes)
	}
	if m >= 50 {
		t.Errorf("%.1f messages/s/node, want < 50", m)
	}
}

// T112 test_bandwidth_10
func TestT112_Bandwidth10(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { checkBandwidth(t, "T112", 10, 15000) })
}

// T113 test_bandwidth_20: upstream runs the scenario twice and keeps the
// second figure; so do we (the first is logged too).
func TestT113_Bandwidth20(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m := bandwidth(t, 20)
		t.Logf("PERF T113 n=20 run=1 bytes_per_node_s=%.0f msgs_per_node_s=%.1f (ignored, as upstream)", b, m)
	})
	synctest.Test(t, func(t *testing.T) { checkBandwidth(t, "T113", 20, 25000) })
}

// T114 test_bandwidth_40
func TestT114_Bandwidth40(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { checkBandwidth(t, "T114", 40, 50000) })
}

// T115 test_bandwidth_100
func TestT115_Bandwidth100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { checkBandwidth(t, "T115", 100, 120000) })
}

// stability is upstream's faulty-network stability scenario: n nodes, 50%
// of the datagrams dropped; once every node has seen n live nodes, node 1's
// watch must not yield a map whose size is not n for 30 s.
func stability(t *testing.T, tnum string, n int) {
	const hold = 30 * time.Second
	c := perfCluster(t, n, 0.5)
	var conv time.Duration
	for i := range n {
		conv += waitSize(t, c, i, n, perfConvergeTimeout)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hold)
	defer cancel()
	bad, d, err := c.WaitWatch(ctx, 1, func(v []*chitchat.NodeState) bool { return len(v) != n })
	if err == nil {
		t.Errorf("after %v node 1's watch yielded %d nodes, want %d for %v", d, len(bad), n, hold)
		return
	}
	t.Logf("PERF %s n=%d drop=0.5 converge=%v stable_for=%v", tnum, n, conv, d)
}

// T116 test_faulty_network_stability_10
func TestT116_FaultyNetworkStability10(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { stability(t, "T116", 10) })
}

// T117 test_faulty_network_stability_100 (upstream uses 10 nodes despite
// the name)
func TestT117_FaultyNetworkStability100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { stability(t, "T117", 10) })
}

// T117 with the 100 nodes its name promises.
func TestT117_FaultyNetworkStability100Nodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { stability(t, "T117", 100) })
}
