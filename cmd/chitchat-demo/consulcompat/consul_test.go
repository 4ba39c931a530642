package consulcompat

// Consul's Go client against three chitchat-demo processes, as a Consul
// user would script it: members, the agent's own services, nodes, the
// service catalog with tags, health with the passing filter, and blocking
// queries woken by a failing check, a killed node and a node that leaves.
// Waits are the client's own blocking queries: nothing sleeps or polls.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// demoBin is the chitchat-demo binary, built from the repository by
// TestMain.
var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consulcompat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "chitchat-demo")
	build := exec.Command("go", "build", "-o", demoBin, "./cmd/chitchat-demo")
	build.Dir = filepath.Join("..", "..", "..") // the repository's root module
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building chitchat-demo:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port free for TCP and UDP on 127.0.0.1, never one
// returned before in this run.
var used sync.Map

func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		pc.Close()
		if _, dup := used.LoadOrStore(port, true); !dup {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// node is a chitchat-demo process.
type node struct {
	name   string
	cmd    *exec.Cmd
	addr   string // HTTP ip:port
	exited chan struct{}
	err    error
	log    *strings.Builder
	mu     sync.Mutex
}

var readyLine = regexp.MustCompile(`serving (http://\S+)/ `)

// start runs a node and waits until it serves.
func start(ctx context.Context, t *testing.T, name string, args ...string) *node {
	t.Helper()
	n := &node{name: name, cmd: exec.Command(demoBin, args...), exited: make(chan struct{}), log: &strings.Builder{}}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	var copies sync.WaitGroup
	copies.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- strings.TrimPrefix(m[1], "http://")
			}
		}
	})
	copies.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
		}
	})
	go func() {
		copies.Wait()
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			n.mu.Lock()
			t.Logf("--- %s: stderr:\n%s", name, n.log.String())
			n.mu.Unlock()
		}
	})
	select {
	case n.addr = <-ready:
	case <-n.exited:
		t.Fatalf("%s exited before serving: %v", name, n.err)
	case <-ctx.Done():
		t.Fatalf("%s is not serving: %v", name, ctx.Err())
	}
	return n
}

func client(t *testing.T, n *node) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: n.addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitPassing follows /v1/health/service/<service>?passing with the
// client's blocking queries until exactly these nodes pass, and returns
// the last index.
func waitPassing(ctx context.Context, t *testing.T, c *api.Client, service string, nodes ...string) uint64 {
	t.Helper()
	var index uint64
	for {
		entries, meta, err := c.Health().Service(service, "", true, (&api.QueryOptions{WaitIndex: index, WaitTime: time.Minute}).WithContext(ctx))
		if err != nil {
			t.Fatalf("waiting for %s passing on %v: %v", service, nodes, err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Node.Node)
		}
		if slices.Equal(got, nodes) {
			return meta.LastIndex
		}
		if meta.LastIndex <= index {
			t.Fatalf("X-Consul-Index went from %d to %d", index, meta.LastIndex)
		}
		index = meta.LastIndex
	}
}

func TestConsulClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var healthy atomic.Bool
	healthy.Store(true)
	check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer check.Close()
	file := filepath.Join(t.TempDir(), "web.json")
	os.WriteFile(file, []byte(`{"service": {"Name": "web", "ID": "web-1", "Port": 8081, "Tags": ["v1"], "Meta": {"team": "blue"},
		"Check": {"HTTP": "`+check.URL+`/health", "Interval": "200ms", "Timeout": "1s"}}}`), 0o600)

	common := []string{"--interval_ms", "50", "--initial_interval", "1s", "--dead_node_grace_period", "1m"}
	p0 := freePort(t)
	seed := fmt.Sprintf("127.0.0.1:%d", p0)
	nodes := []*node{
		start(ctx, t, "node_0", append([]string{"--listen_addr", seed, "--node_id", "node_0", "--service", "web:8080:v1"}, common...)...),
		start(ctx, t, "node_1", append([]string{"--listen_addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--node_id", "node_1",
			"--seed", seed, "--service_file", file}, common...)...),
		start(ctx, t, "node_2", append([]string{"--listen_addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--node_id", "node_2",
			"--seed", seed, "--service", "web:8082:v2", "--service", "db:5432"}, common...)...),
	}
	c0, c2 := client(t, nodes[0]), client(t, nodes[2])
	// node_2 announces web and db under two keys; gossip may bring them
	// to node_0 in different messages, so wait for both.
	waitPassing(ctx, t, c0, "db", "node_2")
	index := waitPassing(ctx, t, c0, "web", "node_0", "node_1", "node_2")

	t.Run("agent", func(t *testing.T) {
		members, err := c0.Agent().Members(false)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range members {
			got = append(got, fmt.Sprintf("%s:%d", m.Name, m.Status))
		}
		if want := []string{"node_0:1", "node_1:1", "node_2:1"}; !slices.Equal(got, want) {
			t.Errorf("Members = %v, want %v (1: alive)", got, want)
		}
		name, err := c2.Agent().NodeName()
		if err != nil || name != "node_2" {
			t.Errorf("NodeName = %q, %v; want node_2", name, err)
		}
		services, err := c2.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		if len(services) != 2 || services["web"].Port != 8082 || services["db"].Service != "db" || !slices.Equal(services["web"].Tags, []string{"v2"}) {
			t.Errorf("node_2's Agent().Services() = %+v, want web:8082 [v2] and db", services)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		dcs, err := c0.Catalog().Datacenters()
		if err != nil || !slices.Equal(dcs, []string{"testing"}) {
			t.Errorf("Datacenters = %v, %v; want [testing] (the cluster id)", dcs, err)
		}
		nodesList, meta, err := c0.Catalog().Nodes(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodesList) != 3 || nodesList[1].Node != "node_1" || nodesList[1].Address != "127.0.0.1" || nodesList[1].Datacenter != "testing" || meta.LastIndex == 0 || !meta.KnownLeader {
			t.Errorf("Nodes = %+v (index %d, known leader %v)", nodesList, meta.LastIndex, meta.KnownLeader)
		}
		n, _, err := c0.Catalog().Node("node_1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if n == nil || n.Node.Node != "node_1" || n.Services["web-1"] == nil || n.Services["web-1"].Meta["team"] != "blue" {
			t.Errorf("Node(node_1) = %+v, want web-1 with meta team=blue", n)
		}
		if n, _, err := c0.Catalog().Node("nobody", nil); err != nil || n != nil {
			t.Errorf("Node(nobody) = %+v, %v; want nil, nil", n, err)
		}
		services, _, err := c0.Catalog().Services(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(services) != 2 || !slices.Equal(services["web"], []string{"v1", "v2"}) || len(services["db"]) != 0 {
			t.Errorf("Services = %v, want web [v1 v2] and db []", services)
		}
		v1, _, err := c0.Catalog().Service("web", "v1", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range v1 {
			got = append(got, fmt.Sprintf("%s/%s:%d", s.Node, s.ServiceID, s.ServicePort))
		}
		if want := []string{"node_0/web:8080", "node_1/web-1:8081"}; !slices.Equal(got, want) {
			t.Errorf("Service(web, v1) = %v, want %v", got, want)
		}
		both, _, err := c0.Catalog().ServiceMultipleTags("web", []string{"v1", "v2"}, nil)
		if err != nil || len(both) != 0 {
			t.Errorf("ServiceMultipleTags(web, v1+v2) = %+v, %v; want none", both, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, _, err := c0.Catalog().Nodes(&api.QueryOptions{Datacenter: "elsewhere"})
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusInternalServerError || !strings.Contains(se.Body, "No path to datacenter") {
			t.Errorf("Nodes in another datacenter: %v, want 500 No path to datacenter", err)
		}
		_, _, err = c0.Health().Service("web", "", true, &api.QueryOptions{Filter: `Service.Port == 8080`})
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
			t.Errorf("a filter: %v, want 400", err)
		}
	})

	// A blocking health query wakes when node_1's check fails.
	type result struct {
		entries []*api.ServiceEntry
		meta    *api.QueryMeta
		err     error
		at      time.Time
	}
	block := func(index uint64) <-chan result {
		ch := make(chan result, 1)
		go func() {
			e, m, err := c0.Health().Service("web", "", true, (&api.QueryOptions{WaitIndex: index, WaitTime: time.Minute}).WithContext(ctx))
			ch <- result{e, m, err, time.Now()}
		}()
		return ch
	}
	woken := block(index)
	start := time.Now()
	healthy.Store(false)
	r := <-woken
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("blocking query woken %v after node_1's check started failing", r.at.Sub(start))
	index = waitPassing(ctx, t, c0, "web", "node_0", "node_2")
	all, _, err := c0.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[1].Checks.AggregatedStatus() != api.HealthCritical || !strings.Contains(all[1].Checks[1].Output, "500") ||
		all[1].Checks[1].Definition.HTTP != check.URL+"/health" || all[1].Checks[1].Definition.IntervalDuration != 200*time.Millisecond {
		t.Errorf("web without the passing filter: %+v; want node_1's critical, with its check's output and definition", all[1])
	}
	healthy.Store(true)
	waitPassing(ctx, t, c0, "web", "node_0", "node_1", "node_2")

	// node_2 killed: out of ?passing once found dead.
	start = time.Now()
	nodes[2].cmd.Process.Kill()
	waitPassing(ctx, t, c0, "web", "node_0", "node_1")
	t.Logf("killed node_2 out of ?passing after %v", time.Since(start))

	// node_1 leaves: out of the catalog at once (node_2, dead, stays).
	start = time.Now()
	nodes[1].cmd.Process.Signal(syscall.SIGTERM)
	var nodesIndex uint64
	for {
		list, meta, err := c0.Catalog().Nodes((&api.QueryOptions{WaitIndex: nodesIndex, WaitTime: time.Minute}).WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range list {
			names = append(names, n.Node)
		}
		if slices.Equal(names, []string{"node_0", "node_2"}) {
			break
		}
		nodesIndex = meta.LastIndex
	}
	t.Logf("left node_1 out of the catalog after %v", time.Since(start))
	members, err := c0.Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for _, m := range members {
		status[m.Name] = m.Status
	}
	if status["node_1"] != 3 || status["node_2"] != 4 {
		t.Errorf("member statuses %v, want node_1 left (3) and node_2 failed (4)", status)
	}
}
