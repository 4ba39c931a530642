//go:build linux

package main

// A real network partition between hosts, with network namespaces: five
// nodes, each alone in a namespace with its own address, wired by veth
// pairs into a bridge that lives in a hub namespace of its own. Nothing
// touches the host's network: the namespaces, links and the private
// 10.213.0.0/24 subnet exist only inside what the test creates, and the
// test reaches each node's HTTP API by opening its connections inside that
// node's namespace (setns on a locked thread).
//
//	hub: br0 ─┬─ v0 ══ eth0 10.213.0.1 (ns n0)      partition: v3, v4 move to br1,
//	          ├─ v1 ══ eth0 10.213.0.2 (ns n1)      so {n0,n1,n2} and {n3,n4} each
//	          ├─ …                                   still talk among themselves
//	     br1 ─┘ (empty until the partition)
//
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2; skipped otherwise.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsPrefix starts the name of every namespace these tests create:
// cct-<pid>-<random>-<role>. The pid tells leftovers of a crashed run
// (their process is gone) from those of a run in progress.
const netnsPrefix = "cct-"

func TestPartitionAcrossNamespaces(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces, veth pairs and bridges (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command (Debian: apt-get install iproute2)")
	}
	removeStaleNamespaces(t)
	ctx := testContext(t)

	const n = 5
	tag := fmt.Sprintf("%s%d-%04x", netnsPrefix, os.Getpid(), rand.IntN(1<<16))
	hub := tag + "-hub"
	if out, err := ipCmd("netns", "add", hub); err != nil {
		t.Skipf("ip netns is unavailable here (no permission to create namespaces?): %v: %s", err, out)
	}
	t.Cleanup(func() { deleteNamespace(t, hub) })
	if out, err := ipCmd("-n", hub, "link", "add", "br0", "type", "bridge"); err != nil {
		t.Skipf("cannot create a bridge (no bridge support in this kernel?): %v: %s", err, out)
	}
	mustIP(t, "-n", hub, "link", "add", "br1", "type", "bridge")
	mustIP(t, "-n", hub, "link", "set", "br0", "up")
	mustIP(t, "-n", hub, "link", "set", "br1", "up")

	names := make([]string, n)
	for i := range n {
		ns := fmt.Sprintf("%s-n%d", tag, i)
		names[i] = ns
		mustIP(t, "netns", "add", ns)
		t.Cleanup(func() { deleteNamespace(t, ns) })
		veth := "v" + strconv.Itoa(i)
		mustIP(t, "-n", hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		mustIP(t, "-n", hub, "link", "set", veth, "master", "br0", "up")
		mustIP(t, "-n", ns, "addr", "add", nodeIP(i)+"/24", "dev", "eth0")
		mustIP(t, "-n", ns, "link", "set", "eth0", "up")
		mustIP(t, "-n", ns, "link", "set", "lo", "up")
	}

	// One node per namespace, all on port 7000 (each namespace has its own
	// ports), seeded with n0.
	nodes := make([]*proc, n)
	clients := make([]*http.Client, n)
	for i, ns := range names {
		args := []string{"netns", "exec", ns, demoBin, "--listen_addr", nodeIP(i) + ":7000", "--seed", nodeIP(0) + ":7000",
			"--node_id", nodeName(i), "--interval_ms", "100", "--initial_interval", "500ms", "--dead_node_grace_period", "1h"}
		nodes[i] = startCommand(t, nodeName(i), exec.Command("ip", args...))
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: netnsDialer(ns)}}
		t.Cleanup(clients[i].CloseIdleConnections)
	}
	waitServing(ctx, nodes...)
	// each runs one wait per node, concurrently, and fails the test with
	// every error.
	each := func(what string, wait func(i int) error) {
		t.Helper()
		start := time.Now()
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- wait(i) }()
		}
		failed := false
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
				failed = true
			}
		}
		if failed {
			t.FailNow()
		}
		t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	}
	everyone, sideA, sideB := []int{0, 1, 2, 3, 4}, []int{0, 1, 2}, []int{3, 4}
	each("all 5 live on every node", func(i int) error {
		_, err := follow(ctx, clients[i], nodes[i].url, nil, liveSet(everyone, nil))
		return err
	})

	// Cut {n3, n4} off: their veths move to the other bridge.
	for _, i := range sideB {
		mustIP(t, "-n", hub, "link", "set", "v"+strconv.Itoa(i), "master", "br1")
	}
	each("each side sees the other dead", func(i int) error {
		mine, theirs := sideA, sideB
		if slices.Contains(sideB, i) {
			mine, theirs = sideB, sideA
		}
		_, err := follow(ctx, clients[i], nodes[i].url, nil, liveSet(mine, theirs))
		return err
	})

	// Writes on both sides during the partition; each side learns its own.
	written := map[int]string{0: "a0", 1: "a1", 3: "b3", 4: "b4"}
	for i, key := range written {
		url := fmt.Sprintf("%s/set_kv/?key=%s&value=during-partition", nodes[i].url, key)
		if code, _, body, err := fetch(ctx, clients[i], url); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s = %d %s (%v)", url, code, body, err)
		}
	}
	each("each side has its own writes, not the other side's", func(i int) error {
		var conds []cond
		for w, key := range written {
			if slices.Contains(sideA, i) == slices.Contains(sideA, w) {
				conds = append(conds, hasKey(nodeName(w), key, "during-partition"))
			}
		}
		d, err := follow(ctx, clients[i], nodes[i].url, nil, all(conds...))
		for w, key := range written {
			if slices.Contains(sideA, i) != slices.Contains(sideA, w) && hasKey(nodeName(w), key, "during-partition").f(d) {
				return fmt.Errorf("%s has %s's key %s through the partition", nodeName(i), nodeName(w), key)
			}
		}
		return err
	})

	// Heal: every node is live again everywhere, with every write.
	for _, i := range sideB {
		mustIP(t, "-n", hub, "link", "set", "v"+strconv.Itoa(i), "master", "br0")
	}
	each("healed: all 5 live with every write on every node", func(i int) error {
		conds := []cond{liveSet(everyone, nil)}
		for w, key := range written {
			conds = append(conds, hasKey(nodeName(w), key, "during-partition"))
		}
		_, err := follow(ctx, clients[i], nodes[i].url, nil, all(conds...))
		return err
	})
}

func nodeIP(i int) string   { return "10.213.0." + strconv.Itoa(i+1) }
func nodeName(i int) string { return "n" + strconv.Itoa(i) }

// liveSet holds when exactly the nodes live are live and exactly those
// dead are dead.
func liveSet(live, dead []int) cond {
	wantLive, wantDead := nodeNames(live), nodeNames(dead)
	return cond{fmt.Sprintf("live %v, dead %v", wantLive, wantDead), func(d stateDoc) bool {
		names := func(ids []chitchatIDDoc) []string {
			var s []string
			for _, id := range ids {
				s = append(s, id.NodeID)
			}
			slices.Sort(s)
			return s
		}
		return slices.Equal(names(d.LiveNodes), wantLive) && slices.Equal(names(d.DeadNodes), wantDead)
	}}
}

func nodeNames(is []int) []string {
	var names []string
	for _, i := range is {
		names = append(names, nodeName(i))
	}
	slices.Sort(names)
	return names
}

// all holds when every one of conds holds on the same document.
func all(conds ...cond) cond {
	var descs []string
	for _, c := range conds {
		descs = append(descs, c.desc)
	}
	return cond{strings.Join(descs, " and "), func(d stateDoc) bool {
		for _, c := range conds {
			if !c.f(d) {
				return false
			}
		}
		return true
	}}
}

// netnsDialer dials from inside the network namespace ns: the socket is
// created on an OS thread switched into ns, and stays there.
func netnsDialer(ns string) func(ctx context.Context, network, address string) (net.Conn, error) {
	path := filepath.Join("/run/netns", ns)
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := dialInNetns(ctx, path, network, address)
			done <- result{c, err}
		}()
		r := <-done
		return r.c, r.err
	}
}

func dialInNetns(ctx context.Context, path, network, address string) (net.Conn, error) {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer home.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", path, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	} // else the thread stays locked, and the runtime ends it with this goroutine
	return c, err
}

func ipCmd(args ...string) ([]byte, error) {
	return exec.Command("ip", args...).CombinedOutput()
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := ipCmd(args...); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// deleteNamespace kills what still runs in ns, then deletes it (and so
// its links; a bridge's veth peers go with it).
func deleteNamespace(t testing.TB, ns string) {
	out, _ := ipCmd("netns", "pids", ns)
	for f := range strings.FieldsSeq(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := ipCmd("netns", "del", ns); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
}

// removeStaleNamespaces deletes the namespaces of earlier runs whose test
// process is gone (a crash or a kill left them behind).
func removeStaleNamespaces(t *testing.T) {
	out, err := ipCmd("netns", "list")
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ") // "name (id: 3)"
		rest, ok := strings.CutPrefix(name, netnsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			t.Logf("removing %s, left behind by an earlier run (pid %d)", name, pid)
			deleteNamespace(t, name)
		}
	}
}
