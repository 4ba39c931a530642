package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
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
	flags := []string{"--interval_ms", "50", "--dead_node_grace_period", "2s", "--initial_interval", "1s"}
	base := freePorts(t, 3)
	nodes := startNodes(ctx, t, base, 3, func(int) []string { return flags })
	d := mustWatch(ctx, t, nodes[0].url, liveDead(3, 0))
	victim := findID(t, d.LiveNodes, "node_2")

	start := time.Now()
	t.Logf("cluster up")
	nodes[2].cmd.Process.Kill()
	nodes[2].wait(ctx)

	// Each survivor sees it dead, then forgets it.
	isDead := cond{"node_2 dead", func(d stateDoc) bool { return slices.Contains(d.DeadNodes, victim) }}
	isGone := cond{"node_2 garbage collected", func(d stateDoc) bool {
		for _, ns := range d.ClusterState.NodeStates {
			if ns.ChitchatID == victim {
				return false
			}
		}
		return !slices.Contains(d.DeadNodes, victim) && len(d.LiveNodes) == 2
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
	restarted := startNode(ctx, t, "node_2 (restarted)", seededArgs(base, 2, flags...)...)
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

// findID returns the id of the node called name in ids.
func findID(t *testing.T, ids []chitchatIDDoc, name string) chitchatIDDoc {
	t.Helper()
	i := slices.IndexFunc(ids, func(id chitchatIDDoc) bool { return id.NodeID == name })
	if i < 0 {
		t.Fatalf("no %s in %v", name, ids)
	}
	return ids[i]
}

// SIGTERM makes a node leave: it exits 0 and the others list it in
// left_nodes, never in dead_nodes. A node killed with SIGKILL cannot leave:
// it is listed in dead_nodes, never in left_nodes. /v1/agent/members and
// /metrics tell the two apart too.
func TestGracefulLeaveIsNotDeath(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// A long grace period: nothing is collected during the test. A prior
	// interval in line with the 50 ms gossip interval, for a quick death.
	nodes := startNodes(ctx, t, freePorts(t, 3), 3, func(int) []string {
		return []string{"--interval_ms", "50", "--initial_interval", "1s", "--dead_node_grace_period", "1m"}
	})
	// Every node must see the others live first: a node not yet seen live
	// three times is "dead" on discovery (upstream's rule), and leaving then
	// would say nothing about the leave.
	var d stateDoc
	for _, p := range nodes {
		d = mustWatch(ctx, t, p.url, liveDead(3, 0))
	}
	leaver := findID(t, d.LiveNodes, "node_2")
	victim := findID(t, d.LiveNodes, "node_1")
	neverDead := cond{"node_2 is not in dead_nodes", func(d stateDoc) bool { return !slices.Contains(d.DeadNodes, leaver) }}
	hasLeft := cond{"node_2 in left_nodes, 2 live", func(d stateDoc) bool {
		return slices.Contains(d.LeftNodes, leaver) && len(d.LiveNodes) == 2 && len(d.DeadNodes) == 0
	}}

	start := time.Now()
	errs := make(chan error, 2)
	for _, p := range nodes[:2] {
		go func() {
			_, err := follow(ctx, http.DefaultClient, p.url, &neverDead, hasLeft)
			errs <- err
		}()
	}
	nodes[2].stop(ctx, syscall.SIGTERM)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("node_2 exited and is left on both survivors after %v", time.Since(start))
	if log := nodes[2].stderr.String(); !strings.Contains(log, `msg="left the cluster"`) {
		t.Errorf("node_2 did not log a completed leave:\n%s", log)
	}

	start = time.Now()
	nodes[1].cmd.Process.Kill()
	nodes[1].wait(ctx)
	isDead := cond{"node_1 in dead_nodes, node_2 still left", func(d stateDoc) bool {
		return slices.Contains(d.DeadNodes, victim) && slices.Contains(d.LeftNodes, leaver) && len(d.LiveNodes) == 1
	}}
	neither := cond{"node_1 is not in left_nodes and node_2 not in dead_nodes", func(d stateDoc) bool {
		return !slices.Contains(d.LeftNodes, victim) && neverDead.f(d)
	}}
	if _, err := follow(ctx, http.DefaultClient, nodes[0].url, &neither, isDead); err != nil {
		t.Fatal(err)
	}
	t.Logf("node_1 dead on node_0 after %v", time.Since(start))

	_, _, body := httpGet(ctx, t, nodes[0].url+"/v1/agent/members")
	var members []member
	if err := json.Unmarshal(body, &members); err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for _, m := range members {
		status[m.Name] = m.Status
	}
	if want := map[string]int{"node_0": memberAlive, "node_1": memberFailed, "node_2": memberLeft}; !maps.Equal(status, want) {
		t.Errorf("member statuses %v, want %v", status, want)
	}
	_, _, body = httpGet(ctx, t, nodes[0].url+"/metrics")
	for _, m := range []string{"\nchitchat_live_nodes 1\n", "\nchitchat_dead_nodes 1\n", "\nchitchat_left_nodes 1\n"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("node_0's /metrics has no %q", strings.TrimSpace(m))
		}
	}
}
