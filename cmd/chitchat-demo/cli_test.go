package main

// Upstream chitchat-test's CLI tests (T118–T119) and the rest of
// the command line, against real processes. Upstream sleeps 5 s and then
// asserts; these tests follow a node's /events until the cluster has
// converged, then assert the same things.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// T118 test_multiple_nodes.
func TestMultipleNodes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	nodes := startCluster(ctx, t, 5, "127.0.0.1")
	n1 := nodes[1].url
	mustWatch(ctx, t, n1, liveDead(5, 0))

	// Without the trailing slash, as upstream's test.
	mustStatusTrue(ctx, t, n1+"/set_kv?key=some_key&value=some_value")
	d := getState(ctx, t, n1)
	if d.ClusterID != "testing" {
		t.Errorf("cluster_id = %q, want testing", d.ClusterID)
	}
	if len(d.LiveNodes) != 5 || len(d.DeadNodes) != 0 {
		t.Errorf("%d live and %d dead nodes, want 5 and 0: %s", len(d.LiveNodes), len(d.DeadNodes), summary(d))
	}
	if len(d.ClusterState.NodeStates) < 4 {
		t.Fatalf("node_states[3] does not exist: %s", summary(d))
	}
	ns := d.ClusterState.NodeStates[1]
	if ns.ChitchatID.NodeID != "node_1" {
		t.Errorf("node_states[1] is %q, want node_1 (node_states must be in id order)", ns.ChitchatID.NodeID)
	}
	if got, want := ns.KeyValues["some_key"], (versionedValDoc{Value: "some_value", Version: 1, Status: "Set"}); got != want {
		t.Errorf("node_states[1].key_values[some_key] = %+v, want %+v", got, want)
	}

	// The key reaches every node.
	errs := make(chan error, len(nodes))
	for _, p := range nodes {
		go func() {
			_, err := watch(ctx, p.url, hasKey("node_1", "some_key", "some_value"))
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	// SIGTERM and SIGINT stop a node cleanly, with status 0.
	for i, p := range nodes {
		p.stop(ctx, []syscall.Signal{syscall.SIGTERM, syscall.SIGINT}[i%2])
	}
}

// T119 test_multiple_nodes_with_dns_resolution_for_seed.
func TestMultipleNodesWithDNSSeed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	nodes := startCluster(ctx, t, 5, "localhost")
	d := mustWatch(ctx, t, nodes[1].url, liveDead(5, 0))
	if d.ClusterID != "testing" {
		t.Errorf("cluster_id = %q, want testing", d.ClusterID)
	}
	if len(d.ClusterState.NodeStates) < 4 {
		t.Errorf("node_states[3] does not exist: %s", summary(d))
	}
	if !slices.Contains(d.ClusterState.SeedAddrs, nodes[0].url[len("http://"):]) {
		t.Errorf("seed_addrs = %q, want localhost resolved to node_0's address %s", d.ClusterState.SeedAddrs, nodes[0].url)
	}
}

// The JSON of / has exactly upstream's shape: field names and
// order, nesting, types, status strings, address strings, node order; plus
// left_nodes last, our one addition (upstream has no graceful leave).
func TestStateJSONShape(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	base := freePorts(t, 2)
	nodes := startNodes(ctx, t, base, 2, func(int) []string { return []string{"--interval_ms", "50"} })
	n0, n1 := nodes[0], nodes[1]
	for _, q := range []string{
		"/set_kv/?key=a&value=1", "/set_kv/?key=b&value=2", "/mark_for_deletion/?key=b",
		"/set_kv/?key=c&value=3", "/delete_after_ttl/?key=c",
	} {
		mustStatusTrue(ctx, t, n1.url+q)
	}
	mustWatch(ctx, t, n0.url, liveDead(2, 0), cond{"node_1 at version 5", func(d stateDoc) bool {
		return len(d.ClusterState.NodeStates) == 2 && d.ClusterState.NodeStates[1].MaxVersion == 5
	}})

	code, ctype, body := httpGet(ctx, t, n0.url+"/")
	if code != 200 || ctype != "text/plain; charset=utf-8" {
		t.Errorf("GET / = %d %q, want 200 text/plain; charset=utf-8", code, ctype)
	}
	if !bytes.HasPrefix(body, []byte("{\n  \"cluster_id\": \"testing\",\n  \"cluster_state\": {\n    \"node_states\": [\n      {\n")) {
		t.Errorf("GET / is not pretty-printed with 2 spaces:\n%s", body)
	}
	checkShape(t, body)

	var d strictState
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("strict decode: %v\n%s", err, body)
	}
	id0 := strictID{"node_0", d.LiveNodes[0].GenerationID, addr(base)}
	id1 := strictID{"node_1", d.ClusterState.NodeStates[1].ChitchatID.GenerationID, addr(base + 1)}
	if d.ClusterState.NodeStates[0].ChitchatID != id0 || !slices.Equal(d.LiveNodes, []strictID{id0, id1}) {
		t.Errorf("node_states[0] = %+v and live_nodes = %+v, want node_0 then node_1 (self first)",
			d.ClusterState.NodeStates[0].ChitchatID, d.LiveNodes)
	}
	if d.DeadNodes == nil || len(d.DeadNodes) != 0 || d.LeftNodes == nil || len(d.LeftNodes) != 0 ||
		d.ClusterState.SeedAddrs == nil || len(d.ClusterState.SeedAddrs) != 0 {
		t.Errorf("dead_nodes = %v, left_nodes = %v, seed_addrs = %v: want [], [] and [] (not null)",
			d.DeadNodes, d.LeftNodes, d.ClusterState.SeedAddrs)
	}
	want := map[string]strictValue{
		"a": {"1", 1, "Set"},
		"b": {"", 3, "Delete"},
		"c": {"3", 5, "DeleteAfterTtl"},
	}
	got := d.ClusterState.NodeStates[1].KeyValues
	if len(got) != len(want) {
		t.Errorf("node_1 key_values = %+v, want %+v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("node_1 key_values[%s] = %+v, want %+v", k, got[k], w)
		}
	}
	if ns := d.ClusterState.NodeStates[1]; ns.MaxVersion != 5 || ns.LastGCVersion != 0 || ns.Heartbeat == 0 {
		t.Errorf("node_1: max_version %d, last_gc_version %d, heartbeat %d; want 5, 0, > 0", ns.MaxVersion, ns.LastGCVersion, ns.Heartbeat)
	}
	if seeds := getState(ctx, t, n1.url).ClusterState.SeedAddrs; !slices.Equal(seeds, []string{addr(base)}) {
		t.Errorf("node_1 seed_addrs = %q, want [%q]", seeds, addr(base))
	}
}

// Types for the strict decoding of / (independent of the server's own).
type (
	strictState struct {
		ClusterID    string `json:"cluster_id"`
		ClusterState struct {
			NodeStates []struct {
				ChitchatID    strictID               `json:"chitchat_id"`
				Heartbeat     uint64                 `json:"heartbeat"`
				KeyValues     map[string]strictValue `json:"key_values"`
				MaxVersion    uint64                 `json:"max_version"`
				LastGCVersion uint64                 `json:"last_gc_version"`
			} `json:"node_states"`
			SeedAddrs []string `json:"seed_addrs"`
		} `json:"cluster_state"`
		LiveNodes []strictID `json:"live_nodes"`
		DeadNodes []strictID `json:"dead_nodes"`
		LeftNodes []strictID `json:"left_nodes"` // not upstream's
	}
	strictID struct {
		NodeID              string `json:"node_id"`
		GenerationID        uint64 `json:"generation_id"`
		GossipAdvertiseAddr string `json:"gossip_advertise_addr"`
	}
	strictValue struct {
		Value   string `json:"value"`
		Version uint64 `json:"version"`
		Status  string `json:"status"`
	}
)

// checkShape checks the field names, and their order, at every level.
func checkShape(t *testing.T, body []byte) {
	t.Helper()
	idKeys := []string{"node_id", "generation_id", "gossip_advertise_addr"}
	top := object(t, body)
	expectKeys(t, "document", top, "cluster_id", "cluster_state", "live_nodes", "dead_nodes", "left_nodes")
	cs := object(t, top.get("cluster_state"))
	expectKeys(t, "cluster_state", cs, "node_states", "seed_addrs")
	for i, raw := range array(t, cs.get("node_states")) {
		ns := object(t, raw)
		expectKeys(t, "node_states["+strconv.Itoa(i)+"]", ns, "chitchat_id", "heartbeat", "key_values", "max_version", "last_gc_version")
		expectKeys(t, "chitchat_id", object(t, ns.get("chitchat_id")), idKeys...)
		kvs := object(t, ns.get("key_values"))
		if !slices.IsSorted(kvs.keys) {
			t.Errorf("key_values keys %q are not sorted", kvs.keys)
		}
		for _, k := range kvs.keys {
			expectKeys(t, "key_values["+k+"]", object(t, kvs.get(k)), "value", "version", "status")
		}
	}
	for _, list := range []string{"live_nodes", "dead_nodes", "left_nodes"} {
		for _, raw := range array(t, top.get(list)) {
			expectKeys(t, list+" entry", object(t, raw), idKeys...)
		}
	}
}

// orderedObject is a JSON object with its keys in document order.
type orderedObject struct {
	keys   []string
	values []json.RawMessage
}

func (o orderedObject) get(k string) json.RawMessage {
	if i := slices.Index(o.keys, k); i >= 0 {
		return o.values[i]
	}
	return nil
}

func object(t *testing.T, raw json.RawMessage) orderedObject {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %.80s", raw)
	}
	var o orderedObject
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		o.keys = append(o.keys, tok.(string))
		o.values = append(o.values, v)
	}
	return o
}

func array(t *testing.T, raw json.RawMessage) []json.RawMessage {
	t.Helper()
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil || a == nil {
		t.Fatalf("not a JSON array: %.80s", raw)
	}
	return a
}

func expectKeys(t *testing.T, what string, o orderedObject, want ...string) {
	t.Helper()
	if !slices.Equal(o.keys, want) {
		t.Errorf("%s has fields %q, want %q", what, o.keys, want)
	}
}

// Bad command lines exit with status 2 and name every flag to fix; --help
// exits 0.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stderr, or stdout for --help
	}{
		{"unparsable listen_addr", []string{"--listen_addr", "127.0.0.1"}, 2, []string{`--listen_addr "127.0.0.1": not an ip:port`}},
		{"host name as listen_addr", []string{"--listen_addr=localhost:10000"}, 2, []string{"--listen_addr"}},
		{"negative interval", []string{"--interval_ms", "-5"}, 2, []string{`--interval_ms "-5"`}},
		{"zero interval", []string{"--interval_ms=0"}, 2, []string{"--interval_ms"}},
		{"unknown flag", []string{"--listen", "127.0.0.1:1"}, 2, []string{"unknown flag --listen"}},
		{"missing value", []string{"--seed"}, 2, []string{"flag --seed needs a value"}},
		{"seed without port", []string{"--seed", "localhost"}, 2, []string{`--seed "localhost"`, "missing port"}},
		{"duration without unit", []string{"--dead_node_grace_period", "10"}, 2, []string{"--dead_node_grace_period", "10s"}},
		{"wildcard without public_addr", []string{"--listen_addr", "0.0.0.0:10000"}, 2, []string{"--public_addr"}},
		{"positional argument", []string{"node_1"}, 2, []string{`unexpected argument "node_1"`}},
		{"every problem at once", []string{"--listen_addr", "x", "--interval_ms", "0", "--bogus", "--log_level", "loud"}, 2,
			[]string{"--listen_addr", "--interval_ms", "unknown flag --bogus", "--log_level"}},
		{"cluster: bad -n", []string{"cluster", "-n", "0"}, 2, []string{`-n "0"`}},
		{"cluster: unknown flag", []string{"cluster", "--nodes", "3"}, 2, []string{"unknown flag --nodes"}},
		{"cluster: node flag set by the launcher", []string{"cluster", "--", "--node_id", "x"}, 2, []string{"--node_id cannot be passed"}},
		{"cluster: bad node flag", []string{"cluster", "--", "--interval_ms", "fast"}, 2, []string{`--interval_ms "fast"`}},
		{"bad gossip key", []string{"--gossip_key", "c2VjcmV0"}, 2, []string{"--gossip_key: gossip key is 6 bytes, want 32", "head -c 32 /dev/urandom | base64"}},
		{"overlay without its ids", []string{"--overlay", "--interval_ms", "0"}, 2,
			[]string{"--overlay needs --overlay_node_id", "--overlay needs --overlay_ip", "--interval_ms"}},
		{"cluster: bad overlay flag", []string{"cluster", "--", "--wg_keepalive", "25s"}, 2, []string{"add --overlay"}},
		{"help", []string{"--help"}, 0, []string{"--listen_addr", "--seed", "--interval_ms", "cluster",
			"--leave_timeout", "--gossip_key ", "--gossip_key_file", "--overlay\n", "--overlay_ip", "/overlay/wg-quick", "/v1/keyring"}},
		{"cluster help", []string{"cluster", "-h"}, 0, []string{"--base_port", "-n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, demoBin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if tt.code == 0 {
				out = stdout.String()
			}
			if code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

// A node whose address is taken says so and exits with status 1.
func TestAddressInUse(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	port := freePorts(t, 1)
	startNode(ctx, t, "first", "--listen_addr", addr(port), "--node_id", "first", "--interval_ms", "50")
	second := startProc(t, "second", "--listen_addr", addr(port), "--node_id", "second")
	if code := second.wait(ctx); code != exitError {
		t.Errorf("exit status %d, want %d", code, exitError)
	}
	if log := second.stderr.String(); !strings.Contains(log, addr(port)) || !strings.Contains(log, "address already in use") {
		t.Errorf("stderr does not say that %s is in use:\n%s", addr(port), log)
	}
}

// SIGTERM stops a node promptly even while a client follows /events: the
// streams end with the node instead of holding up its HTTP shutdown.
func TestStopWithOpenEventStream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	n := startNode(ctx, t, "node_0", "--listen_addr", addr(freePorts(t, 1)), "--node_id", "node_0", "--interval_ms", "50")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream is established
		t.Fatal(err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, shutdownTimeout/2)
	defer cancel()
	n.stop(stopCtx, syscall.SIGTERM)
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("the event stream did not end cleanly: %v", err)
	}
	if log := n.stderr.String(); strings.Contains(log, "did not stop in time") {
		t.Errorf("the HTTP server waited for the stream:\n%s", log)
	}
}
