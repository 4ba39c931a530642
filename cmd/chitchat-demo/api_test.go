package main

// In-process tests of the HTTP handlers: a node on the in-memory transport
// behind httptest, so the race detector sees the handlers.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp/minihttptest"
	"github.com/gossipkit/chitchat-go/transport"
)

// testConfig is the configuration of testNode's node.
func testConfig() chitchat.Config {
	return chitchat.Config{
		ID:             chitchat.NodeID{Name: "node_0", Generation: 1, Addr: netip.MustParseAddrPort("10.0.0.1:7280")},
		ClusterID:      "testing",
		GossipInterval: 10 * time.Millisecond,
	}
}

// testNode runs a node with testConfig on an in-memory network and serves
// its API.
func testNode(t *testing.T) (*chitchat.Server, *minihttptest.Server) {
	t.Helper()
	return testNodeWith(t, testConfig())
}

// testNodeWith is testNode with the configuration cfg.
func testNodeWith(t *testing.T, cfg chitchat.Config) (*chitchat.Server, *minihttptest.Server) {
	t.Helper()
	network, err := transport.NewNetwork(transport.NetworkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := chitchat.Spawn(t.Context(), cfg, network)
	if err != nil {
		t.Fatal(err)
	}
	ts := minihttptest.NewServer(newAPI(srv, cfg, nil, testHTTPOptions()).routes())
	t.Cleanup(func() {
		srv.Shutdown() // ends the /events streams
		ts.Close()
	})
	return srv, ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestMutations(t *testing.T) {
	srv, ts := testNode(t)
	for _, tt := range []struct{ path, want string }{
		{"/set_kv/?key=a&value=1", `{"status":true}`}, {"/set_kv?key=b&value=2", `{"status":true}`},
		{"/set_kv/?key=empty&value=", `{"status":true}`},
		{"/mark_for_deletion/?key=a", `{"status":true}`}, {"/mark_for_deletion?key=missing", `{"status":false}`},
		{"/delete_after_ttl/?key=b", `{"status":true}`}, {"/delete_after_ttl?key=missing", `{"status":false}`},
	} {
		resp, body := get(t, ts.URL+tt.path)
		if resp.StatusCode != http.StatusOK || body != tt.want || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("GET %s = %d %q %q, want 200 application/json %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.want)
		}
	}
	self, _ := srv.NodeState(srv.Self())
	want := map[string]chitchat.Status{"a": chitchat.StatusDeleted, "b": chitchat.StatusDeleteAfterTTL, "empty": chitchat.StatusSet}
	got := map[string]chitchat.Status{}
	for k, v := range self.AllKeyValues() {
		got[k] = v.Status
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}
}

// An empty key is refused; a badly percent-encoded one is reported as
// malformed, not as missing.
func TestBadKeys(t *testing.T) {
	srv, ts := testNode(t)
	for _, tt := range []struct {
		path string
		want int
		msg  string
	}{
		{"/set_kv/?key=&value=v", http.StatusBadRequest, "the key is empty"},
		{"/mark_for_deletion?key=", http.StatusBadRequest, "the key is empty"},
		{"/delete_after_ttl/?key=", http.StatusBadRequest, "the key is empty"},
		{"/set_kv/?key=100%&value=v", http.StatusBadRequest, "malformed query string"},
		{"/set_kv/?key=a%zzb&value=v", http.StatusBadRequest, "malformed query string"},
		{"/set_kv/?key=k&value=%E2%82", http.StatusBadRequest, "valid UTF-8"},
		{"/mark_for_deletion/?key=%", http.StatusBadRequest, "malformed query string"},
	} {
		resp, body := get(t, ts.URL+tt.path)
		var e errorDoc
		if resp.StatusCode != tt.want || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tt.msg) {
			t.Errorf("GET %s = %d %s, want %d with an error saying %q", tt.path, resp.StatusCode, body, tt.want, tt.msg)
		}
	}
	if _, ok := srv.Get(""); ok {
		t.Error("the empty key was set")
	}
}

func TestMissingParameters(t *testing.T) {
	_, ts := testNode(t)
	for _, tt := range []struct{ path, missing string }{
		{"/set_kv/", "key, value"}, {"/set_kv", "key, value"}, {"/set_kv/?key=k", "value"}, {"/set_kv?value=v", "key"},
		{"/mark_for_deletion/", "key"}, {"/mark_for_deletion", "key"},
		{"/delete_after_ttl/", "key"}, {"/delete_after_ttl?value=v", "key"},
	} {
		resp, body := get(t, ts.URL+tt.path)
		var e errorDoc
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusBadRequest ||
			!strings.Contains(e.Error, "missing query parameter(s): "+tt.missing) {
			t.Errorf("GET %s = %d %s, want 400 with a JSON error naming %q", tt.path, resp.StatusCode, body, tt.missing)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	_, ts := testNode(t)
	for _, tt := range []struct {
		method, path, contentType string
		want                      int
	}{
		{http.MethodHead, "/set_kv/?key=a&value=b", "", http.StatusMethodNotAllowed},
		{http.MethodHead, "/mark_for_deletion?key=a", "", http.StatusMethodNotAllowed},
		{http.MethodPut, "/set_kv/?key=a&value=b", "", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/delete_after_ttl/?key=a", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "/set_kv/?key=a&value=b", "text/plain", http.StatusUnsupportedMediaType},
		{http.MethodGet, "/nope", "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}

func TestHealthz(t *testing.T) {
	srv, ts := testNode(t)
	if resp, body := get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	srv.Shutdown()
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz after the gossip server stopped = %d, want 503", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	_, ts := testNode(t)
	get(t, ts.URL+"/set_kv/?key=a&value=1")
	resp, body := get(t, ts.URL+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, m := range []string{
		"chitchat_messages_sent_total", "chitchat_bytes_sent_total",
		"chitchat_messages_received_total", "chitchat_bytes_received_total",
		"chitchat_decode_errors_total", "chitchat_send_errors_total", "chitchat_recv_errors_total",
		"chitchat_events_dropped_total", "chitchat_live_nodes 1", "chitchat_dead_nodes 0", "chitchat_known_nodes 1",
		"chitchat_heartbeat", "chitchat_key_values 1", "chitchat_left_nodes 0",
		`chitchat_datagrams_dropped_total{reason="replay"} 0`, `chitchat_datagrams_dropped_total{reason="auth_failure"} 0`, "chitchat_gossip_round_seconds_count", "chitchat_gossip_round_seconds_sum",
		`chitchat_node_info{cluster_id="testing",generation_id="1",gossip_advertise_addr="10.0.0.1:7280",node_id="node_0"} 1`,
		"chitchat_claims_refused_total 0", "chitchat_self_deltas_ignored_total 0", "chitchat_refutations_total 0",
		"chitchat_reincarnations_total 0", "chitchat_replies_capped_total 0", "chitchat_version_mismatch_total 0",
		"chitchat_messages_refused_total 0", "chitchat_views_forgotten_total 0", "chitchat_forged_content_total 0",
		"chitchat_push_not_forwarded_total 0", `chitchat_datagrams_dropped_total{reason="future_counter"} 0`,
		"chitchat_push_originated_total", "chitchat_push_forwarded_total", "chitchat_push_rate_limited_total",
		"chitchat_stream_exchanges_started_total", "chitchat_stream_bytes_total",
		"go_goroutines", "process_",
	} {
		if !strings.Contains(body, "\n"+m) {
			t.Errorf("/metrics has no %s", m)
		}
	}
}

// Tags are the node's keys, without tombstones or the library's internal
// keys.
func TestAgentMembers(t *testing.T) {
	srv, ts := testNode(t)
	get(t, ts.URL+"/set_kv/?key=role&value=indexer")
	get(t, ts.URL+"/set_kv/?key=gone&value=x")
	get(t, ts.URL+"/mark_for_deletion/?key=gone")
	srv.Set(internalKeyPrefix+"marker", "x") // as the library sets its own keys
	resp, body := get(t, ts.URL+"/v1/agent/members")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/json; charset=utf-8" {
		t.Errorf("GET /v1/agent/members = %d %q", resp.StatusCode, ct)
	}
	var got []member
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	want := []member{{Name: "node_0", Addr: "10.0.0.1", Port: 7280, Tags: map[string]string{"role": "indexer"}, Status: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("members mismatch (-want +got):\n%s", diff)
	}
	// Consul's field names.
	for _, f := range []string{`"Name"`, `"Addr"`, `"Port"`, `"Tags"`, `"Status"`} {
		if !strings.Contains(body, f) {
			t.Errorf("no %s field in %s", f, body)
		}
	}
}

// Members are every known node in name order: live 1, left 3, dead 4.
func TestAgentMembersStatus(t *testing.T) {
	s := twoNodeSnapshot(t)
	s.Live = s.Live[:1]
	node1 := s.Nodes[1].ID()
	for _, tt := range []struct {
		name       string
		dead, left []chitchat.NodeID
		want       int
	}{
		{"dead", []chitchat.NodeID{node1}, nil, memberFailed},
		{"left", nil, []chitchat.NodeID{node1}, memberLeft},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.Dead, s.Left = tt.dead, tt.left
			want := []member{
				{Name: "node_0", Addr: "127.0.0.1", Port: 13000, Tags: map[string]string{"some_key": "some_value"}, Status: memberAlive},
				{Name: "node_1", Addr: "::1", Port: 13001, Tags: map[string]string{"role": "indexer", "ttl": "soon"}, Status: tt.want},
			}
			if diff := cmp.Diff(want, agentMembers(s)); diff != "" {
				t.Errorf("members mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUIPage(t *testing.T) {
	srv, ts := testNode(t)
	srv.Set("evil", "</script><script>alert(1)</script><!--")
	for _, path := range []string{"/ui", "/ui/"} {
		resp, body := get(t, ts.URL+path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("GET %s = %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, `new EventSource("/events")`) {
			t.Errorf("GET %s: the page does not follow /events", path)
		}
		// The current state is in the page, as JSON no value can break
		// out of.
		_, rest, ok := strings.Cut(body, `<script id="state" type="application/json">`)
		state, _, _ := strings.Cut(rest, "</script>")
		var d stateDoc
		if err := json.Unmarshal([]byte(state), &d); !ok || err != nil || d.ClusterID != "testing" || len(d.LiveNodes) != 1 ||
			d.ClusterState.NodeStates[0].KeyValues["evil"].Value != "</script><script>alert(1)</script><!--" {
			t.Errorf("GET %s: the page holds no state, or a broken one (%v): %.300s", path, err, state)
		}
		// Self-contained: no external script, style, image or font.
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(`).FindString(body); m != "" {
			t.Errorf("GET %s: the page loads an external asset: %q", path, m)
		}
	}
}

// /events sends the document at once, then again when it changes.
func TestEvents(t *testing.T) {
	srv, ts := testNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() stateDoc {
		t.Helper()
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var d stateDoc
				if err := json.Unmarshal([]byte(data), &d); err != nil {
					t.Fatal(err)
				}
				return d
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return stateDoc{}
	}
	if d := next(); d.ClusterID != "testing" || len(d.LiveNodes) != 1 || d.LiveNodes[0].NodeID != "node_0" {
		t.Errorf("first event = %s, want the document of node_0", summary(d))
	}
	srv.Set("k", "v")
	for {
		d := next()
		if d.ClusterState.NodeStates[0].KeyValues["k"].Value == "v" {
			break
		}
	}
}

// twoNodeSnapshot is node_0's view after a handshake with node_1 (on IPv6),
// built with engines and an explicit clock: deterministic.
func twoNodeSnapshot(t *testing.T) chitchat.Snapshot {
	t.Helper()
	now := time.Date(2024, 4, 20, 8, 0, 0, 0, time.UTC)
	e0 := testEngine(t, "node_0", 1713600000, "127.0.0.1:13000", chitchat.KeyValue{Key: "some_key", Value: "some_value"})
	e1 := testEngine(t, "node_1", 1713600001, "[::1]:13001",
		chitchat.KeyValue{Key: "role", Value: "indexer"}, chitchat.KeyValue{Key: "tmp", Value: "x"}, chitchat.KeyValue{Key: "ttl", Value: "soon"})
	e1.Delete(now, "tmp")
	e1.DeleteAfterTTL(now, "ttl")
	e0.SetSeeds([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:13000"), netip.MustParseAddrPort("[::1]:13001")})
	// Syn from node_0, SynAck from node_1, Ack from node_0: both know both.
	synAck := e1.Process(now, e0.CreateSyn(now))
	if ack := e0.Process(now, synAck); ack != nil {
		e1.Process(now, ack)
	}
	s := e0.Snapshot(now)
	if len(s.Nodes) != 2 {
		t.Fatalf("node_0 knows %d nodes after a handshake, want 2", len(s.Nodes))
	}
	return s
}

func testEngine(t *testing.T, name string, gen uint64, addr string, kvs ...chitchat.KeyValue) *chitchat.Engine {
	t.Helper()
	e, err := chitchat.NewEngine(chitchat.Config{
		ID:        chitchat.NodeID{Name: name, Generation: gen, Addr: netip.MustParseAddrPort(addr)},
		ClusterID: "testing",
	}, rand.New(rand.NewPCG(1, 2)), kvs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The document of / byte for byte: upstream's field names and order, two
// spaces, key_values sorted with tombstones, IPv6 in brackets; then
// left_nodes, our addition (upstream has no graceful leave).
func TestDocumentGolden(t *testing.T) {
	s := twoNodeSnapshot(t)
	s.Dead = []chitchat.NodeID{s.Nodes[1].ID()}
	got, err := json.MarshalIndent(document(s), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats: 1 at creation, +1 per message received.
	want := `{
  "cluster_id": "testing",
  "cluster_state": {
    "node_states": [
      {
        "chitchat_id": {
          "node_id": "node_0",
          "generation_id": 1713600000,
          "gossip_advertise_addr": "127.0.0.1:13000"
        },
        "heartbeat": 2,
        "key_values": {
          "some_key": {
            "value": "some_value",
            "version": 1,
            "status": "Set"
          }
        },
        "max_version": 1,
        "last_gc_version": 0
      },
      {
        "chitchat_id": {
          "node_id": "node_1",
          "generation_id": 1713600001,
          "gossip_advertise_addr": "[::1]:13001"
        },
        "heartbeat": 2,
        "key_values": {
          "role": {
            "value": "indexer",
            "version": 1,
            "status": "Set"
          },
          "tmp": {
            "value": "",
            "version": 4,
            "status": "Delete"
          },
          "ttl": {
            "value": "soon",
            "version": 5,
            "status": "DeleteAfterTtl"
          }
        },
        "max_version": 5,
        "last_gc_version": 0
      }
    ],
    "seed_addrs": [
      "127.0.0.1:13000",
      "[::1]:13001"
    ]
  },
  "live_nodes": [
    {
      "node_id": "node_0",
      "generation_id": 1713600000,
      "gossip_advertise_addr": "127.0.0.1:13000"
    }
  ],
  "dead_nodes": [
    {
      "node_id": "node_1",
      "generation_id": 1713600001,
      "gossip_advertise_addr": "[::1]:13001"
    }
  ],
  "left_nodes": []
}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("document mismatch (-want +got):\n%s", diff)
	}
}

// An empty cluster state writes [] and {}, never null.
func TestDocumentEmptyLists(t *testing.T) {
	s := twoNodeSnapshot(t)
	s.Nodes, s.Live, s.Dead, s.Left, s.Seeds = nil, nil, nil, nil, nil
	got, _ := json.Marshal(document(s))
	want := `{"cluster_id":"testing","cluster_state":{"node_states":[],"seed_addrs":[]},"live_nodes":[],"dead_nodes":[],"left_nodes":[]}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	lonely := testEngine(t, "lonely", 1, "127.0.0.1:13000").Snapshot(time.Now())
	if b, _ := json.Marshal(document(lonely)); !bytes.Contains(b, []byte(`"key_values":{},`)) {
		t.Errorf("key_values of a node without keys is not {}: %s", b)
	}
}

// A node that left is listed in left_nodes, after dead_nodes, and not as
// dead.
func TestDocumentLeftNodes(t *testing.T) {
	s := twoNodeSnapshot(t)
	s.Live, s.Dead, s.Left = s.Live[:1], nil, []chitchat.NodeID{s.Nodes[1].ID()}
	got, err := json.Marshal(document(s))
	if err != nil {
		t.Fatal(err)
	}
	want := `"dead_nodes":[],"left_nodes":[{"node_id":"node_1","generation_id":1713600001,"gossip_advertise_addr":"[::1]:13001"}]}`
	if !bytes.HasSuffix(got, []byte(want)) {
		t.Errorf("document ends with %s, want %s", got[max(0, len(got)-len(want)):], want)
	}
}
