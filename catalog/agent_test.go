package catalog_test

// Agents over a chitchat cluster on the in-memory network, in virtual time
// (testing/synctest): every duration asserted is exact or bounded by the
// protocol's own periods.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

// gossipInterval is chitchattest.LibConfig's.
const gossipInterval = 100 * time.Millisecond

// fakeProbe answers checks from a table, by target.
type fakeProbe struct {
	mu      sync.Mutex
	results map[string]catalog.Result
}

func (p *fakeProbe) set(target string, r catalog.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.results[target] = r
}

func (p *fakeProbe) run(_ context.Context, c catalog.Check) catalog.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.results[c.HTTP+c.TCP]; ok {
		return r
	}
	return catalog.Result{Status: catalog.Critical, Output: "unreachable"}
}

type testCluster struct {
	t      *testing.T
	c      *chitchattest.Cluster
	agents []*catalog.Agent
	probe  *fakeProbe
}

// newTestCluster starts n nodes, node-0 to node-(n-1), each with a running
// agent, and waits until node 0 sees every node live.
func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, c: chitchattest.New(t, chitchattest.Options{}), probe: &fakeProbe{results: map[string]catalog.Result{}}}
	for i := range n {
		tc.c.AddNode(fmt.Sprintf("node-%d", i), uint16(1+i))
		a, err := catalog.New(catalog.Config{Probe: tc.probe.run}, tc.c.Node(i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil && !strings.Contains(err.Error(), "server stopped") {
				t.Errorf("agent %d: Run: %v", i, err)
			}
		})
		tc.agents = append(tc.agents, a)
		waitStarted(t, a)
	}
	tc.c.MustWaitLive(10*time.Second, 0, tc.c.IDs()...)
	return tc
}

// waitStarted waits for the agent's first view (its own node), so that Run
// is past its start-up before the test can end: a chitchat.Server's
// Subscribe racing with the server's shutdown (the harness stops servers
// when the test function returns) is a data race in the server.
func waitStarted(t *testing.T, a *catalog.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if v := a.Wait(ctx, 1, func(v *catalog.View) uint64 { return v.Index }); v.Index < 2 {
		t.Fatal("the agent published no view within a second")
	}
}

// waitView waits, by blocking on the agent's change index, until cond holds
// for agent i's view, and returns that view and the virtual time it took.
func (tc *testCluster) waitView(i int, timeout time.Duration, desc string, cond func(*catalog.View) bool) (*catalog.View, time.Duration) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	a := tc.agents[i]
	v := a.View()
	for !cond(v) {
		if ctx.Err() != nil {
			tc.t.Fatalf("node-%d: %s: not within %v (view index %d)", i, desc, timeout, v.Index)
		}
		v = a.Wait(ctx, v.Index, func(v *catalog.View) uint64 { return v.Index })
	}
	return v, time.Since(start)
}

// passing returns the names of the nodes with a passing instance of name.
func passing(v *catalog.View, name string) []string {
	var nodes []string
	for _, in := range v.Service(name).Select(nil, true) {
		nodes = append(nodes, in.Node.Name())
	}
	return nodes
}

func hasPassing(name string, nodes ...string) func(*catalog.View) bool {
	return func(v *catalog.View) bool { return strings.Join(passing(v, name), ",") == strings.Join(nodes, ",") }
}

// A registration shows in the node's own view at once, and on the others
// within a few gossip rounds.
func TestAgentRegisterIsSeenEverywhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3)
		if err := tc.agents[1].Register(catalog.Service{Name: "web", Port: 8080, Tags: []string{"v1"}}); err != nil {
			t.Fatal(err)
		}
		if _, d := tc.waitView(1, time.Second, "own web", hasPassing("web", "node-1")); d != 0 {
			t.Errorf("node-1 saw its own service after %v, want at once", d)
		}
		for _, i := range []int{0, 2} {
			v, d := tc.waitView(i, 10*time.Second, "web on node-1", hasPassing("web", "node-1"))
			t.Logf("node-%d sees web after %v", i, d)
			// One round for node-1's Syn to carry the news, one for the
			// live-nodes watch to publish it.
			if d > 3*gossipInterval {
				t.Errorf("node-%d saw web after %v, want within 3 gossip rounds", i, d)
			}
			in := v.Service("web").Instances[0]
			if in.Service.Port != 8080 || in.Addr() != tc.c.ID(1).Addr.Addr() || !in.HasTags("v1") {
				t.Errorf("node-%d: instance %+v, want port 8080, node-1's address, tag v1", i, in.Service)
			}
		}
		if got := tc.agents[1].Services(); len(got) != 1 || got[0].ID != "web" {
			t.Errorf("Services() = %+v, want web (ID defaults to the name)", got)
		}

		if !tc.agents[1].Deregister("web") {
			t.Fatal("Deregister(web) = false")
		}
		tc.waitView(0, 10*time.Second, "web gone", func(v *catalog.View) bool { return v.Service("web") == nil })
		if tc.agents[1].Deregister("web") {
			t.Error("second Deregister(web) = true")
		}
	})
}

// The owner runs the check and gossips each change of result; readers see
// the new status within an interval plus a few rounds.
func TestAgentCheckResultsAreGossiped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 2)
		const target = "http://web.test/health"
		tc.probe.set(target, catalog.Result{Status: catalog.Passing, Output: "200 OK"})
		err := tc.agents[1].Register(catalog.Service{Name: "web", Check: &catalog.Check{HTTP: target, Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		_, d := tc.waitView(0, 10*time.Second, "web passing", hasPassing("web", "node-1"))
		t.Logf("first result seen after %v", d)

		tc.probe.set(target, catalog.Result{Status: catalog.Critical, Output: "503 Service Unavailable"})
		v, d := tc.waitView(0, 10*time.Second, "web critical", hasPassing("web"))
		t.Logf("critical seen after %v", d)
		if d > time.Second+3*gossipInterval {
			t.Errorf("critical seen after %v, want within the check interval and 3 rounds", d)
		}
		in := v.Service("web").Instances[0]
		if in.Status() != catalog.Critical || in.Check.Output != "503 Service Unavailable" {
			t.Errorf("instance health %v %+v, want critical with the probe's output", in.Status(), in.Check)
		}
		if n := tc.agents[1].Stats().ChecksRun; n < 2 {
			t.Errorf("ChecksRun = %d, want at least 2", n)
		}
		// Results that do not change are not written again: the health key
		// keeps its version while the check keeps failing.
		before, _ := tc.c.Node(1).NodeState(tc.c.ID(1))
		time.Sleep(5 * time.Second) // virtual: five more attempts
		after, _ := tc.c.Node(1).NodeState(tc.c.ID(1))
		v1, _ := before.GetVersioned("health:web")
		v2, _ := after.GetVersioned("health:web")
		if v1.Version != v2.Version {
			t.Errorf("health:web rewritten (version %d -> %d) though the result did not change", v1.Version, v2.Version)
		}
	})
}

// A node the failure detector finds dead makes its services critical in the
// very round it is found dead; it stays in the catalog, as Consul's failed
// nodes do, until chitchat forgets it.
func TestAgentDeadNodeFailsAtDetection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3)
		for _, i := range []int{1, 2} {
			if err := tc.agents[i].Register(catalog.Service{Name: "web", Port: 8000 + i}); err != nil {
				t.Fatal(err)
			}
		}
		tc.waitView(0, 10*time.Second, "web on node-1 and node-2", hasPassing("web", "node-1", "node-2"))

		// When node-0's server finds node-2 dead (its live-nodes watch),
		// versus when its catalog fails node-2's web.
		detected := make(chan time.Time, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for live := range tc.c.Node(0).WatchLiveNodes(ctx) {
				if len(live) == 2 {
					detected <- time.Now()
					return
				}
			}
		}()
		start := time.Now()
		tc.c.MustShutdown(2) // a crash: no leave
		v, _ := tc.waitView(0, time.Minute, "web on node-1 only", hasPassing("web", "node-1"))
		failed := time.Now()
		at := <-detected
		t.Logf("node-2 found dead after %v; its web failed after %v", at.Sub(start), failed.Sub(start))
		if !failed.Equal(at) {
			t.Errorf("web failed %v after node-2 was found dead, want at once", failed.Sub(at))
		}
		n, ok := v.Node("node-2")
		if !ok || n.Live {
			t.Fatalf("node-2 in the catalog: %v %+v, want present and not live", ok, n)
		}
		if got := v.Service("web").Select(nil, false); len(got) != 2 || got[1].Status() != catalog.Critical {
			t.Errorf("web instances (any health) = %d, want 2 with node-2's critical", len(got))
		}

		// Forgotten after the dead-node grace period (LibConfig: 20s), and
		// gone from the catalog at the next refresh.
		_, d := tc.waitView(0, time.Minute, "node-2 gone", func(v *catalog.View) bool { _, ok := v.Node("node-2"); return !ok })
		gone := failed.Add(d).Sub(at)
		t.Logf("node-2 gone from the catalog %v after its death", gone)
		if grace := 20 * time.Second; gone < grace || gone > grace+catalog.DefaultRefreshInterval+gossipInterval {
			t.Errorf("node-2 left the catalog %v after its death, want within [%v, %v]", gone, grace, grace+catalog.DefaultRefreshInterval+gossipInterval)
		}
	})
}

// A node that leaves takes its services with it the moment its departure
// is known, not at the next round.
func TestAgentLeftNodeGoesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 3)
		if err := tc.agents[2].Register(catalog.Service{Name: "web", Port: 80}); err != nil {
			t.Fatal(err)
		}
		tc.waitView(0, 10*time.Second, "web on node-2", hasPassing("web", "node-2"))
		learned := make(chan time.Time, 1)
		cancel := tc.c.Node(0).Subscribe(chitchat.LeftKey, func(chitchat.KeyChange) {
			select {
			case learned <- time.Now():
			default:
			}
		})
		defer cancel()
		start := time.Now()
		left := make(chan error, 1)
		go func() { left <- tc.c.Node(2).Leave(context.Background()) }()
		v, d := tc.waitView(0, 10*time.Second, "node-2 gone", func(v *catalog.View) bool { _, ok := v.Node("node-2"); return !ok })
		at := <-learned
		t.Logf("node-0 learned the leave after %v, dropped node-2 after %v", at.Sub(start), d)
		if got := time.Now(); !got.Equal(at) {
			t.Errorf("node-2 dropped %v after node-0 learned of its leave, want at once", got.Sub(at))
		}
		if d != 0 {
			t.Errorf("node-2 dropped %v after it left, want at once (Leave pushes its news)", d)
		}
		if v.Service("web") != nil {
			t.Errorf("web still in the catalog: %+v", v.Service("web").Instances)
		}
		if err := <-left; err != nil {
			t.Fatal(err)
		}
	})
}

// A blocking wait returns when the part it watches changes, not before.
func TestAgentWaitOnAPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 1)
		a := tc.agents[0]
		v := a.View()
		dbIndex := func(v *catalog.View) uint64 { return v.ServiceIndex("db", true) }
		got := make(chan *catalog.View, 1)
		go func() { got <- a.Wait(context.Background(), dbIndex(v), dbIndex) }()

		if err := a.Register(catalog.Service{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case v := <-got:
			// web changes the service list, which stands for db's index
			// while there is no db: that wakes the waiter, correctly.
			if v.Service("web") == nil {
				t.Fatalf("Wait returned before any change (index %d)", v.Index)
			}
			go func() { got <- a.Wait(context.Background(), dbIndex(v), dbIndex) }()
		default:
			t.Fatal("a new service did not release a wait on a service absent so far")
		}
		if err := a.Register(catalog.Service{Name: "web", Port: 1}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case v := <-got:
			t.Fatalf("a change of web released a wait on db (index %d)", v.Index)
		default:
		}
		start := time.Now()
		if err := a.Register(catalog.Service{Name: "db"}); err != nil {
			t.Fatal(err)
		}
		v = <-got
		if d := time.Since(start); d != 0 || v.Service("db") == nil {
			t.Errorf("wait on db released after %v with db %v, want at once with db", d, v.Service("db"))
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start = time.Now()
		a.Wait(ctx, dbIndex(v), dbIndex)
		if d := time.Since(start); d != 5*time.Minute {
			t.Errorf("a wait with nothing changing returned after %v, want its 5m timeout", d)
		}
	})
}

// Bad entries from a peer are skipped and counted; its good ones are used.
func TestAgentSkipsBadGossip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 2)
		srv := tc.c.Node(1)
		for k, v := range map[string]string{"service:evil": "{", "service:huge": `{"name":"` + strings.Repeat("x", 100) + `"}`,
			"health:other": `{"status":"sideways"}`} {
			if err := srv.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := tc.agents[1].Register(catalog.Service{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		tc.waitView(0, 10*time.Second, "web on node-1", hasPassing("web", "node-1"))
		if got := tc.agents[0].Stats().BadEntries; got != 3 {
			t.Errorf("node-0 BadEntries = %d, want 3", got)
		}
	})
}

func TestAgentRegisterRejectsInvalid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := newTestCluster(t, 1)
		err := tc.agents[0].Register(catalog.Service{Name: "bad name", Port: 70000, Check: &catalog.Check{HTTP: "ftp://x"}})
		for _, want := range []string{`service name "bad name"`, "port 70000", "absolute http", "interval 0s"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Register error %v does not mention %q", err, want)
			}
		}
		if got := tc.agents[0].Services(); len(got) != 0 {
			t.Errorf("Services() after a rejected registration = %+v", got)
		}
	})
}

// Indexes start at Config.FirstIndex, so that a restarted agent can start
// above its previous incarnation's.
func TestAgentFirstIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chitchattest.New(t, chitchattest.Options{})
		c.AddNode("node-0", 1)
		a, err := catalog.New(catalog.Config{FirstIndex: 1_000_000}, c.Node(0))
		if err != nil {
			t.Fatal(err)
		}
		if v := a.View(); v.Index != 1_000_000 || v.NodesIndex != 1_000_000 || v.ServiceIndex("web", true) != 1_000_000 {
			t.Errorf("empty view indexes %d %d %d, want 1000000", v.Index, v.NodesIndex, v.ServiceIndex("web", true))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		v := a.Wait(context.Background(), 1_000_000, func(v *catalog.View) uint64 { return v.Index })
		if v.Index != 1_000_001 || v.NodesIndex != 1_000_001 {
			t.Errorf("first change at %d (nodes %d), want 1000001", v.Index, v.NodesIndex)
		}
		if _, err := catalog.New(catalog.Config{FirstIndex: 1 << 63}, c.Node(0)); err == nil {
			t.Error("New accepted a first index of 2^63")
		}
	})
}
