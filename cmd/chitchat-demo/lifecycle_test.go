package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// A node killed with SIGKILL is reported dead by the others, then garbage
// collected after the dead-node grace period; restarted under the same
// --node_id, it comes back with a larger generation.
func TestKilledNodeIsDeadThenCollectedThenRestarts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// Short grace period, and a prior interval in line with the 50 ms
	// gossip interval: the default 5 s prior would take ~15 s to call a
	// node dead that has run for only a second.
	grace := []string{"--dead_node_grace_period", "2s", "--initial_interval", "1s"}
	base := freePorts(t, 3)
	args := func(i int) []string {
		a := []string{"--listen_addr", addr(base + i), "--node_id", "node_" + strconv.Itoa(i), "--interval_ms", "50"}
		if i > 0 {
			a = append(a, "--seed", addr(base))
		}
		return append(a, grace...)
	}
	var nodes []*proc
	for i := range 3 {
		nodes = append(nodes, startProc(t, "node_"+strconv.Itoa(i), args(i)...))
	}
	for _, p := range nodes {
		p.url = p.waitLine(ctx, readyRE)[1]
	}
	d := mustWatch(ctx, t, nodes[0].url, liveDead(3, 0))
	victim := d.LiveNodes[slicesIndexFunc(d.LiveNodes, "node_2")]

	start := time.Now()
	t.Logf("cluster up")
	nodes[2].cmd.Process.Kill()
	nodes[2].wait(ctx)

	// Each survivor sees it dead, then forgets it.
	isDead := cond{"node_2 dead", func(d stateDoc) bool { return containsID(d.DeadNodes, victim) }}
	isGone := cond{"node_2 garbage collected", func(d stateDoc) bool {
		for _, ns := range d.ClusterState.NodeStates {
			if ns.ChitchatID == victim {
				return false
			}
		}
		return !containsID(d.DeadNodes, victim) && len(d.LiveNodes) == 2
	}}
	errs := make(chan error, 2)
	for _, p := range nodes[:2] {
		go func() {
			_, err := watch(ctx, p.url, isDead, isGone)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		t.Logf("a survivor saw node_2 dead then collected after %v", time.Since(start))
	}

	t.Logf("node_2 collected")
	// Back under the same name and address: a new, larger generation.
	restarted := startNode(ctx, t, "node_2 (restarted)", args(2)...)
	back := cond{"node_2 live again with a larger generation", func(d stateDoc) bool {
		for _, id := range d.LiveNodes {
			if id.NodeID == "node_2" && id.GenerationID > victim.GenerationID && id.GossipAdvertiseAddr == victim.GossipAdvertiseAddr {
				return len(d.LiveNodes) == 3 && len(d.DeadNodes) == 0
			}
		}
		return false
	}}
	for _, p := range []*proc{nodes[0], nodes[1], restarted} {
		mustWatch(ctx, t, p.url, back)
		t.Logf("%s sees node_2 back after %v", p.name, time.Since(start))
	}
}

func containsID(ids []chitchatIDDoc, id chitchatIDDoc) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func slicesIndexFunc(ids []chitchatIDDoc, name string) int {
	for i, id := range ids {
		if id.NodeID == name {
			return i
		}
	}
	panic(fmt.Sprintf("no %s in %v", name, ids))
}
