package chitchat_test

// Upstream lib.rs integration tests (T73–T79): real Servers on
// the in-memory network (MTU 65,507) inside a synctest bubble, with the
// lib-test node configuration (chitchattest.LibConfig: gossip 100 ms,
// failure detector {phi 5, initial interval 100 ms, dead-node grace 20 s},
// tombstones kept 3,600 s). upstream waits at most 60 s for a state; so do
// we, in virtual time.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

// libWait is upstream's wait_for_chitchat_state timeout.
const libWait = 60 * time.Second

// setupLibNodes is upstream's setup_nodes: node i is ("node-<port>", 0,
// 127.0.0.1:port); the first node has no seeds, every other node has all the
// other nodes' addresses as seeds.
func setupLibNodes(t *testing.T, ports ...uint16) *chitchattest.Cluster {
	t.Helper()
	c := chitchattest.New(t, chitchattest.Options{})
	for i, p := range ports {
		var seeds []string
		if i > 0 {
			for _, q := range ports {
				if q != p {
					seeds = append(seeds, chitchattest.Addr(q).String())
				}
			}
		}
		c.AddNode(fmt.Sprintf("node-%d", p), p, chitchattest.WithSeeds(seeds...))
	}
	return c
}

func without(ids []chitchat.NodeID, drop chitchat.NodeID) []chitchat.NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(id chitchat.NodeID) bool { return id == drop })
}

// T73 test_live_node_channel
func TestT73_LiveNodeChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 20001, 20002, 20003, 20004, 20005)
		ctx, cancel := context.WithTimeout(t.Context(), libWait)
		defer cancel()
		live, d, err := c.WaitWatch(ctx, 1, func(v []*chitchat.NodeState) bool { return len(v) == 5 })
		if err != nil {
			t.Fatal(err)
		}
		if !chitchattest.SameIDs(live, c.IDs()...) {
			t.Errorf("5-node value = %v, want every node %v", chitchattest.NodeIDs(live), c.IDs())
		}
		t.Logf("node-20002 saw 5 live nodes after %v (virtual)", d)
	})
}

// T74 test_live_node_channel_with_extra_predicate
func TestT74_LiveNodeChannelWithExtraPredicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chitchattest.New(t, chitchattest.Options{})
		ready := chitchattest.WithConfig(func(cfg *chitchat.Config) {
			cfg.ExtraLivenessPredicate = func(ns *chitchat.NodeState) bool {
				v, ok := ns.Get("READY")
				return ok && v == "true"
			}
		})
		seeds := chitchattest.WithSeeds(chitchattest.Addr(1).String())
		for p := uint16(1); p <= 3; p++ {
			c.AddNode(fmt.Sprintf("node-%d", p), p, seeds, ready)
		}

		// For 1 s nobody is READY: node 3 never publishes 3 nodes, and
		// its last value is empty.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		last, _, err := c.WaitWatch(ctx, 2, func(v []*chitchat.NodeState) bool { return len(v) == 3 })
		cancel()
		if err == nil {
			t.Fatalf("node 3 published %v before anyone was READY", chitchattest.NodeIDs(last))
		}
		if len(last) != 0 {
			t.Errorf("last value before READY = %v, want empty", chitchattest.NodeIDs(last))
		}

		for i := range 3 {
			if err := c.Node(i).Set("READY", "true"); err != nil {
				t.Fatal(err)
			}
		}
		d := c.MustWaitLive(libWait, 2, c.IDs()...)
		t.Logf("3 READY nodes published after %v (virtual)", d)

		c.Node(0).Delete("READY")
		c.MustWaitLive(libWait, 2, c.IDs(1, 2)...)

		if err := c.Node(1).Set("READY", "false"); err != nil {
			t.Fatal(err)
		}
		c.MustWaitLive(libWait, 2, c.IDs(2)...)
	})
}

// T75 test_multiple_nodes
func TestT75_MultipleNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 20001, 20002, 20003, 20004, 20005)
		d := c.MustWaitLive(libWait, 1, c.IDs()...)
		t.Logf("converged after %v (virtual)", d)
	})
}

// T76 test_node_goes_from_live_to_down_to_live: the node restarts with the
// SAME id, so peers only see it live again once its new heartbeat has
// overtaken the old incarnation's (docs/PROTOCOL.md §2.1).
func TestT76_NodeGoesFromLiveToDownToLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 30001, 30002, 30003, 30004, 30005, 30006)
		all := c.IDs()
		c.MustWaitLive(libWait, 0, all...)

		const down = 2 // node-30003
		c.MustShutdown(down)
		d := c.MustWaitLive(libWait, 1, without(all, c.ID(down))...)
		t.Logf("node-30003 detected dead after %v (virtual)", d)
		// Not in upstream: node-30001 must have seen the death too, or the
		// final wait below could pass before the restart mattered.
		c.MustWaitLive(libWait, 0, without(all, c.ID(down))...)
		old, ok := c.Node(0).NodeState(all[down])
		if !ok {
			t.Fatalf("node-30001 has no state for %v", all[down])
		}

		c.Restart(down, false, chitchattest.WithSeeds(chitchattest.Addr(30001).String()))
		if c.ID(down) != all[down] {
			t.Fatalf("restarted id = %v, want the same id %v", c.ID(down), all[down])
		}
		d = c.MustWaitLive(libWait, 0, all...)
		now, _ := c.Node(0).NodeState(all[down])
		t.Logf("node-30003 live again after %v (virtual); heartbeat seen by node-30001: %d before the restart, %d now",
			d, old.Heartbeat(), now.Heartbeat())
		if now.Heartbeat() <= old.Heartbeat() {
			t.Errorf("node-30003 live again with heartbeat %d, not above the old incarnation's %d", now.Heartbeat(), old.Heartbeat())
		}
	})
}

// T77 test_dead_node_kvs_are_gossiped_too_when_node_joins
func TestT77_DeadNodeKVsAreGossipedTooWhenNodeJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 40001, 40002)
		n1, n2 := 0, 1
		if err := c.Node(n1).Set("test_key", "test_val"); err != nil {
			t.Fatal(err)
		}
		c.MustWaitLive(libWait, n2, c.IDs()...)
		c.EventuallyNodeState(n2, c.ID(n1), chitchattest.EqualKeyValue("test_key", "test_val"), libWait)

		c.MustShutdown(n1)
		c.MustWaitLive(libWait, n2, c.ID(n2))

		// A new node on node 1's address, named "new_node", with the
		// for_test config (gossip 50 ms, failure detector defaults).
		nn := c.AddNode("new_node", 40001,
			chitchattest.WithSeeds(chitchattest.Addr(40002).String()),
			chitchattest.WithConfig(func(cfg *chitchat.Config) {
				base := chitchattest.ForTest(40001)
				base.ID, base.Seeds, base.RandSeed = cfg.ID, cfg.Seeds, cfg.RandSeed
				*cfg = base
			}))
		c.MustWaitLive(libWait, nn, c.ID(nn), c.ID(n2))

		c.AssertNodeState(nn, c.ID(n1), chitchattest.EqualKeyValue("test_key", "test_val"))
		if got, want := c.Node(nn).DeadNodeIDs(), c.IDs(n1); !slices.Equal(got, want) {
			t.Errorf("new node's dead nodes = %v, want exactly %v", got, want)
		}
	})
}

// T78 test_network_partition_nodes (upstream's name; there is no partition).
func TestT78_NetworkPartitionNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 11001, 11002, 11003, 11004, 11005, 11006)
		for i := range c.Len() {
			c.MustWaitLive(libWait, i, c.IDs()...)
		}
	})
}

// T79 test_dead_node_garbage_collection: with a 20 s dead-node grace
// period, a stopped node's state is gone everywhere 25 s after detection.
func TestT79_DeadNodeGarbageCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := setupLibNodes(t, 60001, 60002, 60003, 60004, 60005, 60006)
		all := c.IDs()
		c.MustWaitLive(libWait, 1, all...)

		const down = 2 // node-60003
		c.MustShutdown(down)
		c.MustWaitLive(libWait, 1, without(all, all[down])...)
		for _, i := range c.Running() {
			if _, ok := c.Node(i).NodeState(all[down]); !ok {
				t.Errorf("node %d has no state for %v right after its death", i, all[down])
			}
		}

		time.Sleep(25 * time.Second) // dead-node grace period + 5 s
		for _, i := range c.Running() {
			if _, ok := c.Node(i).NodeState(all[down]); ok {
				t.Errorf("node %d still has a state for %v 25 s after its death", i, all[down])
			}
		}
	})
}
