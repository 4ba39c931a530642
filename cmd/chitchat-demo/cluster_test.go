package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

// launchedNode is one line of the launcher's summary.
type launchedNode struct {
	name string
	pid  int
	url  string
	dns  string // its DNS server's ip:port
}

var (
	summaryRE = regexp.MustCompile(`^\s+(node_\d+)\s+pid (\d+)\s+(http://\S+)/$`)
	// Matches a node line or the last line of the summary.
	summaryEndRE = regexp.MustCompile(`^\s+(node_\d+)\s+pid (\d+)\s+(http://\S+)/$|^Press Ctrl-C`)
)

// startLauncher runs "chitchat-demo cluster -n n" and returns its nodes once
// it printed that they all serve.
// Node flags follow "--" if nodeFlags is not empty; nodeFlags(base) gets
// the first port of the cluster (which has n of them).
func startLauncher(ctx context.Context, t *testing.T, n int, nodeFlags ...func(base int) []string) (*proc, []launchedNode) {
	t.Helper()
	base, dnsBase := freePorts(t, n), freePorts(t, n)
	args := []string{"cluster", "-n", strconv.Itoa(n), "--base_port", strconv.Itoa(base), "--interval_ms", "50",
		"--dns_base_port", strconv.Itoa(dnsBase)}
	for _, f := range nodeFlags {
		args = append(append(args, "--"), f(base)...)
	}
	l := startProc(t, "launcher", args...)
	var nodes []launchedNode
	for {
		m := l.waitLine(ctx, summaryEndRE)
		if m[1] == "" {
			break
		}
		pid, _ := strconv.Atoi(m[2])
		nodes = append(nodes, launchedNode{m[1], pid, m[3], addr(dnsBase + len(nodes))})
	}
	t.Cleanup(func() {
		// Should the launcher have failed to stop its nodes, do not leave
		// them behind.
		if !t.Failed() {
			return
		}
		for _, c := range nodes {
			syscall.Kill(c.pid, syscall.SIGKILL)
		}
	})
	if len(nodes) != n {
		t.Fatalf("launcher listed %d nodes, want %d", len(nodes), n)
	}
	for i, c := range nodes {
		if want := "http://" + addr(base+i); c.url != want || c.name != "node_"+strconv.Itoa(i) {
			t.Errorf("node %d is %s at %s, want node_%d at %s", i, c.name, c.url, i, want)
		}
	}
	return l, nodes
}

// cluster -n 3 starts three nodes that form a cluster and serve, and leaves
// no process behind after SIGTERM.
func TestClusterCommand(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	l, nodes := startLauncher(ctx, t, 3)
	for _, c := range nodes {
		for _, path := range []string{"/healthz", "/ui"} {
			if code, _, _ := httpGet(ctx, t, c.url+path); code != http.StatusOK {
				t.Errorf("GET %s%s = %d, want 200", c.url, path, code)
			}
		}
	}
	mustWatch(ctx, t, nodes[0].url, liveDead(3, 0))
	// Each node answers DNS on its port of --dns_base_port.
	for _, c := range nodes {
		waitConsul(ctx, t, c.url, "/v1/internal/ui/nodes", "3 live nodes", liveNodes("node_0", "node_1", "node_2"))
		if got := dnsAnswers(ctx, t, c.dns, "node_0.node.consul.", dns.TypeA); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("%s's DNS (%s): node_0.node.consul. A = %v, want 127.0.0.1", c.name, c.dns, got)
		}
	}

	l.stop(ctx, syscall.SIGTERM)
	for _, c := range nodes {
		// The launcher reaped its children before exiting: a pid still
		// there would be a leftover (or a zombie nobody waited for).
		if err := syscall.Kill(c.pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) is still there after the launcher exited: kill(pid, 0) = %v", c.name, c.pid, err)
		}
	}
	log := l.stderr.String()
	for _, c := range nodes {
		// The launcher copies each node's log under its name.
		stopped := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.name) + ` +\| .*msg="node stopped"`)
		if !stopped.MatchString(log) {
			t.Errorf("%s did not log a clean stop:\n%s", c.name, log)
		}
	}
	if !strings.Contains(log, "stopped 3 node(s)") {
		t.Errorf("the launcher did not report stopping 3 nodes:\n%s", log)
	}
}

// With overlay flags, each launched node is its own overlay node: node_0
// lists the two others as peers, ids, IPs and WireGuard ports derived.
func TestClusterCommandOverlay(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	wg := freePorts(t, 3)
	_, nodes := startLauncher(ctx, t, 3, func(int) []string {
		return []string{"--overlay", "--overlay_node_id", "11", "--overlay_ip", "10.201.0.11", "--wg_listen_port", strconv.Itoa(wg)}
	})
	peers, _ := waitOverlayPeers(ctx, t, nodes[0].url, 2)
	for i, p := range peers {
		want := fmt.Sprintf("%d 10.201.0.%d 127.0.0.1:%d", 12+i, 12+i, wg+1+i)
		if got := fmt.Sprintf("%d %v %v", p.NodeID, p.OverlayIP, p.Endpoint); got != want {
			t.Errorf("node_0's peer %d = %s, want %s", i, got, want)
		}
	}
}

// After nodes were killed, the launcher counts only the nodes it stopped.
func TestClusterCommandCountsStoppedNodes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	l, nodes := startLauncher(ctx, t, 4)
	for _, c := range nodes[1:3] {
		if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	// The launcher notices both exits before it is told to stop.
	l.stderr.waitCount(ctx, t, regexp.MustCompile(`node_[12] exited \(signal: killed\); \d node\(s\) still running`), 2)
	l.stop(ctx, syscall.SIGTERM)
	if log := l.stderr.String(); !strings.Contains(log, "stopped 2 node(s); 2 had exited already\n") {
		t.Errorf("the launcher did not report stopping 2 nodes of which 2 had exited:\n%s", log)
	}
}
