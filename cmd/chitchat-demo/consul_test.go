package main

// Consul's HTTP API served by the handlers themselves (no sockets) over
// agents on the in-memory network, in virtual time (testing/synctest).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
	"github.com/gossipkit/chitchat-go/internal/minihttp/minihttptest"
	"github.com/gossipkit/chitchat-go/transport"
)

// fixture is a cluster of nodes node-0, node-1, … each with a catalog
// agent and the demo's HTTP handler.
type fixture struct {
	t        *testing.T
	c        *chitchattest.Cluster
	agents   []*catalog.Agent
	handlers []minihttp.Handler
	probes   *probeTable
}

// probeTable answers health checks by target.
type probeTable struct {
	mu sync.Mutex
	m  map[string]catalog.Result
}

func (p *probeTable) set(target string, r catalog.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[target] = r
}

func (p *probeTable) probe(_ context.Context, c catalog.Check) catalog.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.m[c.HTTP+c.TCP]; ok {
		return r
	}
	return catalog.Result{Status: catalog.Critical, Output: "unreachable"}
}

// newFixture starts n nodes in cluster "dc1"; addrs[i], if given and
// valid, is node i's address. It waits until node 0 sees every node live.
func newFixture(t *testing.T, n int, addrs ...netip.AddrPort) *fixture {
	t.Helper()
	f := &fixture{t: t, probes: &probeTable{m: map[string]catalog.Result{}}}
	f.c = chitchattest.New(t, chitchattest.Options{Config: func(id chitchat.NodeID) chitchat.Config {
		cfg := chitchattest.LibConfig(id)
		cfg.ClusterID = "dc1"
		return cfg
	}, Network: transport.NetworkConfig{DualStack: true}}) // the DNS fixture mixes families
	for i := range n {
		var opts []chitchattest.NodeOption
		if i < len(addrs) && addrs[i].IsValid() {
			a := addrs[i]
			opts = append(opts, chitchattest.WithConfig(func(c *chitchat.Config) { c.ID.Addr, c.ListenAddr = a, a }))
		}
		f.c.AddNode(fmt.Sprintf("node-%d", i), uint16(7000+i), opts...)
		srv := f.c.Node(i)
		agent, err := catalog.New(catalog.Config{Datacenter: datacenterOf("dc1"), Probe: f.probes.probe}, srv)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { agent.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		a := newAPI(srv, f.c.Config(i), nil, testHTTPOptions())
		a.consul = newConsulAPI(agent, srv)
		a.consul.rand = seededRand(uint64(i))
		f.agents = append(f.agents, agent)
		f.handlers = append(f.handlers, a.routes())
		// Past the agent's start-up before the test can end: a
		// chitchat.Server's Subscribe racing with its shutdown is a data
		// race in the server.
		wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
		if v := agent.Wait(wctx, 1, func(v *catalog.View) uint64 { return v.Index }); v.Index < 2 {
			t.Fatal("the agent published no view within a second")
		}
		wcancel()
	}
	f.c.MustWaitLive(10*time.Second, 0, f.c.IDs()...)
	return f
}

// register registers s on node i.
func (f *fixture) register(i int, s catalog.Service) {
	f.t.Helper()
	if err := f.agents[i].Register(s); err != nil {
		f.t.Fatal(err)
	}
}

// waitView waits until cond holds for node i's catalog.
func (f *fixture) waitView(i int, desc string, cond func(*catalog.View) bool) *catalog.View {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := f.agents[i].View()
	for !cond(v) {
		if ctx.Err() != nil {
			f.t.Fatalf("node-%d: %s: not within a minute", i, desc)
		}
		v = f.agents[i].Wait(ctx, v.Index, func(v *catalog.View) uint64 { return v.Index })
	}
	return v
}

// do serves one request on node i.
func (f *fixture) do(i int, method, target string) *minihttptest.ResponseRecorder {
	rec := minihttptest.NewRecorder()
	f.handlers[i].ServeHTTP(rec, localRequest(method, target))
	return rec
}

// get serves GET target on node i, checks a 200 and decodes the body.
func getJSON[T any](f *fixture, i int, target string) (T, uint64) {
	f.t.Helper()
	var v T
	rec := f.do(i, minihttp.MethodGet, target)
	if rec.Code != minihttp.StatusOK {
		f.t.Fatalf("GET %s = %d %s", target, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		f.t.Fatalf("GET %s: %v: %s", target, err, rec.Body)
	}
	index, _ := strconv.ParseUint(rec.Header().Get("X-Consul-Index"), 10, 64)
	return v, index
}

var ignoreIndexes = cmpopts.IgnoreFields(nodeDoc{}, "ID", "CreateIndex", "ModifyIndex")

const checkURL = "http://127.0.0.1:8081/health"

func webService() catalog.Service {
	return catalog.Service{ID: "web-1", Name: "web", Port: 8081, Tags: []string{"v1", "primary"}, Meta: map[string]string{"version": "1.2"},
		Check: &catalog.Check{HTTP: checkURL, Interval: time.Second, Timeout: 500 * time.Millisecond}}
}

// Every endpoint answers Consul's document for node-1's web and db.
func TestConsulDocuments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 2)
		f.probes.set(checkURL, catalog.Result{Status: catalog.Passing, Output: "HTTP GET " + checkURL + ": 200 OK"})
		f.register(1, webService())
		f.register(1, catalog.Service{Name: "db", Port: 5432, Address: netip.MustParseAddr("10.0.0.9")})
		f.waitView(0, "web passing and db", func(v *catalog.View) bool {
			return len(v.Service("web").Select(nil, true)) == 1 && v.Service("db") != nil
		})
		node1 := nodeDoc{Node: "node-1", Address: "127.0.0.1", Datacenter: "dc1",
			TaggedAddresses: map[string]string{"lan": "127.0.0.1", "lan_ipv4": "127.0.0.1", "wan": "127.0.0.1", "wan_ipv4": "127.0.0.1"},
			Meta:            map[string]string{}}
		web := agentServiceDoc{ID: "web-1", Service: "web", Tags: []string{"v1", "primary"}, Meta: map[string]string{"version": "1.2"},
			Port: 8081, Weights: weightsDoc{1, 1}, Datacenter: "dc1"}
		db := agentServiceDoc{ID: "db", Service: "db", Tags: []string{}, Meta: map[string]string{}, Port: 5432, Address: "10.0.0.9",
			Weights: weightsDoc{1, 1}, Datacenter: "dc1"}
		ignore := []cmp.Option{ignoreIndexes, cmpopts.IgnoreFields(agentServiceDoc{}, "CreateIndex", "ModifyIndex"),
			cmpopts.IgnoreFields(catalogServiceDoc{}, "ID", "CreateIndex", "ModifyIndex"),
			cmpopts.IgnoreFields(healthCheckDoc{}, "CreateIndex", "ModifyIndex")}

		nodes, _ := getJSON[[]nodeDoc](f, 0, "/v1/catalog/nodes")
		if len(nodes) != 2 || nodes[0].Node != "node-0" {
			t.Fatalf("nodes = %+v, want node-0 and node-1", nodes)
		}
		if diff := cmp.Diff(node1, nodes[1], ignore...); diff != "" {
			t.Errorf("/v1/catalog/nodes[1] mismatch (-want +got):\n%s", diff)
		}
		if nodes[1].ID != nodeUUID(&catalog.Node{ID: f.c.ID(1)}) || len(nodes[1].ID) != 36 {
			t.Errorf("node ID %q, want a UUID derived from the name and generation", nodes[1].ID)
		}

		cn, _ := getJSON[*catalogNodeDoc](f, 0, "/v1/catalog/node/node-1")
		if diff := cmp.Diff(&catalogNodeDoc{Node: node1, Services: map[string]agentServiceDoc{"web-1": web, "db": db}}, cn, ignore...); diff != "" {
			t.Errorf("/v1/catalog/node/node-1 mismatch (-want +got):\n%s", diff)
		}
		if rec := f.do(0, minihttp.MethodGet, "/v1/catalog/node/nobody"); rec.Code != minihttp.StatusOK || strings.TrimSpace(rec.Body.String()) != "null" {
			t.Errorf("unknown node: %d %s, want 200 null (Consul's answer)", rec.Code, rec.Body)
		}

		services, _ := getJSON[map[string][]string](f, 0, "/v1/catalog/services")
		if diff := cmp.Diff(map[string][]string{"db": {}, "web": {"primary", "v1"}}, services); diff != "" {
			t.Errorf("/v1/catalog/services mismatch (-want +got):\n%s", diff)
		}

		cs, _ := getJSON[[]catalogServiceDoc](f, 0, "/v1/catalog/service/web?tag=v1&tag=PRIMARY")
		wantCS := []catalogServiceDoc{{Node: "node-1", Address: "127.0.0.1", Datacenter: "dc1", TaggedAddresses: node1.TaggedAddresses,
			NodeMeta: map[string]string{}, ServiceID: "web-1", ServiceName: "web", ServiceTags: web.Tags, ServiceMeta: web.Meta,
			ServicePort: 8081, ServiceWeights: weightsDoc{1, 1}}}
		if diff := cmp.Diff(wantCS, cs, ignore...); diff != "" {
			t.Errorf("/v1/catalog/service/web mismatch (-want +got):\n%s", diff)
		}
		if cs, _ := getJSON[[]catalogServiceDoc](f, 0, "/v1/catalog/service/web?tag=v2"); len(cs) != 0 {
			t.Errorf("web with tag v2: %+v, want none", cs)
		}

		entries, _ := getJSON[[]serviceEntryDoc](f, 0, "/v1/health/service/web?passing")
		wantEntries := []serviceEntryDoc{{Node: node1, Service: web, Checks: []healthCheckDoc{
			{Node: "node-1", CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing", Output: "Agent alive and reachable", ServiceTags: []string{}},
			{Node: "node-1", CheckID: "service:web-1", Name: "Service 'web' check", Status: "passing", Output: "HTTP GET " + checkURL + ": 200 OK",
				ServiceID: "web-1", ServiceName: "web", ServiceTags: web.Tags, Type: "http",
				Definition: checkDefinitionDoc{HTTP: checkURL, Interval: "1s", Timeout: "500ms"}},
		}}}
		if diff := cmp.Diff(wantEntries, entries, ignore...); diff != "" {
			t.Errorf("/v1/health/service/web?passing mismatch (-want +got):\n%s", diff)
		}

		agentSvcs, _ := getJSON[map[string]agentServiceDoc](f, 1, "/v1/agent/services")
		if diff := cmp.Diff(map[string]agentServiceDoc{"web-1": web, "db": db}, agentSvcs, ignore...); diff != "" {
			t.Errorf("node-1 /v1/agent/services mismatch (-want +got):\n%s", diff)
		}
		if got, _ := getJSON[map[string]agentServiceDoc](f, 0, "/v1/agent/services"); len(got) != 0 {
			t.Errorf("node-0 /v1/agent/services = %v, want none (they are node-1's)", got)
		}

		self, _ := getJSON[map[string]map[string]any](f, 1, "/v1/agent/self")
		if self["Config"]["NodeName"] != "node-1" || self["Config"]["Datacenter"] != "dc1" || self["Member"]["Name"] != "node-1" ||
			self["Member"]["Status"] != float64(memberAlive) {
			t.Errorf("/v1/agent/self = %v, want node-1 in dc1, alive", self)
		}
		if dcs, _ := getJSON[[]string](f, 0, "/v1/catalog/datacenters"); !cmp.Equal(dcs, []string{"dc1"}) {
			t.Errorf("/v1/catalog/datacenters = %v, want [dc1]", dcs)
		}
		ui, _ := getJSON[[]uiNodeDoc](f, 0, "/v1/internal/ui/nodes")
		if len(ui) != 2 || len(ui[1].Services) != 2 || len(ui[1].Checks) != 2 {
			t.Errorf("/v1/internal/ui/nodes = %+v, want node-1 with 2 services and 2 checks (serf, web's)", ui)
		}
	})
}

// ?passing leaves out failing instances; without it they come with their
// checks; ?passing=false is no filter.
func TestConsulHealthPassing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 3)
		f.probes.set(checkURL, catalog.Result{Status: catalog.Passing})
		f.register(1, webService())
		f.register(2, webService()) // same ID and check URL on another node
		f.waitView(0, "web passing twice", func(v *catalog.View) bool { return len(v.Service("web").Select(nil, true)) == 2 })
		f.probes.set(checkURL, catalog.Result{Status: catalog.Warning, Output: "429 Too Many Requests"})
		f.waitView(0, "web warning twice", func(v *catalog.View) bool { return len(v.Service("web").Select(nil, true)) == 0 })

		status := func(entries []serviceEntryDoc) []string {
			var out []string
			for _, e := range entries {
				out = append(out, e.Node.Node+":"+e.Checks[len(e.Checks)-1].Status)
			}
			return out
		}
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"?passing", nil},
			{"?passing=1", nil},
			{"?passing=false", []string{"node-1:warning", "node-2:warning"}},
			{"", []string{"node-1:warning", "node-2:warning"}},
		} {
			entries, _ := getJSON[[]serviceEntryDoc](f, 0, "/v1/health/service/web"+tt.query)
			if diff := cmp.Diff(tt.want, status(entries)); diff != "" {
				t.Errorf("/v1/health/service/web%s mismatch (-want +got):\n%s", tt.query, diff)
			}
		}
	})
}

// Consul's status codes for what this agent does not serve.
func TestConsulErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1)
		for _, tt := range []struct {
			name, method, target string
			code                 int
			body                 string
		}{
			{"unknown endpoint", "GET", "/v1/kv/foo", 404, ""},
			{"unknown catalog endpoint", "GET", "/v1/catalog/nope", 404, ""},
			{"write method", "PUT", "/v1/catalog/nodes", 405, ""},
			{"register is not served", "PUT", "/v1/agent/service/register", 404, ""},
			{"missing service name", "GET", "/v1/health/service/", 400, "Missing service name"},
			{"missing node name", "GET", "/v1/catalog/node/", 400, "Missing node name"},
			{"bad index", "GET", "/v1/catalog/nodes?index=x", 400, "Invalid index"},
			{"bad wait", "GET", "/v1/catalog/nodes?index=1&wait=soon", 400, "Invalid wait time"},
			{"bad passing", "GET", "/v1/health/service/web?passing=maybe", 400, "Invalid value for ?passing"},
			{"other datacenter", "GET", "/v1/catalog/services?dc=dc2", 500, `No path to datacenter "dc2"`},
			{"our datacenter", "GET", "/v1/catalog/services?dc=dc1", 200, "{}"},
			{"filter", "GET", "/v1/catalog/nodes?filter=Node==x", 400, "?filter is not supported"},
			{"namespace", "GET", "/v1/catalog/services?ns=team", 400, "?ns=team: only the default one exists"},
			{"default namespace", "GET", "/v1/catalog/services?ns=default", 200, "{}"},
		} {
			// No t.Run inside a synctest bubble: the name goes in the message.
			rec := f.do(0, tt.method, tt.target)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s: %s %s = %d %q, want %d containing %q", tt.name, tt.method, tt.target, rec.Code, rec.Body, tt.code, tt.body)
			}
		}
	})
}

// A blocking query returns when its part changes, at that very moment,
// with the new index; with nothing changing it returns after ?wait (plus
// at most 1/16 of jitter) with the same index; beyond maxBlockingQueries
// it is refused.
func TestConsulBlockingQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 2)
		_, index := getJSON[[]serviceEntryDoc](f, 0, "/v1/health/service/web")

		type answer struct {
			rec *minihttptest.ResponseRecorder
			at  time.Time
		}
		query := func(target string) <-chan answer {
			ch := make(chan answer, 1)
			go func() { rec := f.do(0, "GET", target); ch <- answer{rec, time.Now()} }()
			return ch
		}
		web := query(fmt.Sprintf("/v1/health/service/web?index=%d", index))
		db := query(fmt.Sprintf("/v1/health/service/db?index=%d&wait=2s", index))
		synctest.Wait()

		time.Sleep(time.Second) // virtual
		start := time.Now()
		f.register(1, catalog.Service{Name: "web", Port: 80})
		a := <-web
		var entries []serviceEntryDoc
		json.Unmarshal(a.rec.Body.Bytes(), &entries)
		newIndex, _ := strconv.ParseUint(a.rec.Header().Get("X-Consul-Index"), 10, 64)
		t.Logf("web's query returned %v after node-1 registered web", a.at.Sub(start))
		if a.rec.Code != 200 || len(entries) != 1 || newIndex <= index {
			t.Errorf("web's query: %d, %d entries, index %d after %d; want 200, node-1's web, a larger index", a.rec.Code, len(entries), newIndex, index)
		}
		if d := a.at.Sub(start); d > 3*100*time.Millisecond {
			t.Errorf("web's query returned %v after the registration, want within 3 gossip rounds", d)
		}

		// web's arrival changed the service list, which stands for db's
		// index while there is no db: the db query returns then too.
		b := <-db
		if got := b.rec.Header().Get("X-Consul-Index"); got != strconv.FormatUint(newIndex, 10) || b.rec.Body.String() != "[]\n" {
			t.Errorf("db's query: index %s body %q; want the service list's index %d and []", got, b.rec.Body, newIndex)
		}

		// Nothing changes: ?wait=2s (+ up to 2s/16).
		start = time.Now()
		c := <-query(fmt.Sprintf("/v1/health/service/web?index=%d&wait=2s", newIndex))
		if d := c.at.Sub(start); d < 2*time.Second || d > 2*time.Second+2*time.Second/16 {
			t.Errorf("query with nothing changing returned after %v, want 2s to 2.125s", d)
		}
		if got := c.rec.Header().Get("X-Consul-Index"); got != strconv.FormatUint(newIndex, 10) {
			t.Errorf("timed-out query: index %s, want unchanged %d", got, newIndex)
		}
		// The default wait is 5 minutes, capped at 10.
		start = time.Now()
		c = <-query(fmt.Sprintf("/v1/catalog/nodes?index=%d", newIndex+100))
		if d := c.at.Sub(start); d < defaultQueryWait || d > defaultQueryWait*17/16 {
			t.Errorf("query without ?wait returned after %v, want 5m to 5m18.75s", d)
		}
		start = time.Now()
		c = <-query(fmt.Sprintf("/v1/catalog/nodes?index=%d&wait=1h", newIndex+100))
		if d := c.at.Sub(start); d < maxQueryWait || d > maxQueryWait*17/16 {
			t.Errorf("query with ?wait=1h returned after %v, want the 10m cap (plus jitter)", d)
		}

		// Full: a blocking query is refused; a non-blocking one is served.
		api := newConsulAPI(f.agents[0], f.c.Node(0))
		for range maxBlockingQueries {
			api.blocking <- struct{}{}
		}
		mux := minihttp.NewServeMux()
		api.routes(mux)
		rec := minihttptest.NewRecorder()
		mux.ServeHTTP(rec, localRequest("GET", fmt.Sprintf("/v1/catalog/nodes?index=%d", newIndex+100)))
		if rec.Code != minihttp.StatusTooManyRequests {
			t.Errorf("blocking query beyond the cap: %d %s, want 429", rec.Code, rec.Body)
		}
		rec = minihttptest.NewRecorder()
		mux.ServeHTTP(rec, localRequest("GET", "/v1/catalog/nodes"))
		if rec.Code != minihttp.StatusOK {
			t.Errorf("non-blocking query with every slot taken: %d, want 200", rec.Code)
		}
	})
}

// A blocking query outlives a server-wide WriteTimeout shorter than its
// wait (real sockets and time: the deadline is the HTTP server's).
func TestConsulBlockingQueryOutlivesWriteTimeout(t *testing.T) {
	f := newFixture(t, 1)
	ts := minihttptest.NewUnstartedServer(f.handlers[0])
	ts.Config.WriteTimeout = 100 * time.Millisecond
	ts.Start()
	defer ts.Close()
	_, index := getJSON[[]nodeDoc](f, 0, "/v1/catalog/nodes")
	resp, err := http.Get(fmt.Sprintf("%s/v1/catalog/nodes?index=%d&wait=300ms", ts.URL, index))
	if err != nil {
		t.Fatalf("blocking query through a server with a 100ms WriteTimeout: %v", err)
	}
	defer resp.Body.Close()
	var nodes []nodeDoc
	if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil || resp.StatusCode != 200 || len(nodes) != 1 {
		t.Errorf("answer %d, %d nodes, %v; want 200 and node-0", resp.StatusCode, len(nodes), err)
	}
}

// localRequest is a request for target as a local client sends it (Host
// localhost: the API refuses foreign host names).
func localRequest(method, target string) *minihttp.Request {
	r := minihttptest.NewRequest(method, target, nil)
	r.Host = "localhost"
	return r
}
