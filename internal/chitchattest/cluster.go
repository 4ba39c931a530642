package chitchattest

import (
	"flag"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// Loopback is the IP every harness node listens on (the in-memory network
// takes addresses literally, so any IP would do).
var Loopback = netip.MustParseAddr("127.0.0.1")

// Addr returns 127.0.0.1:port.
func Addr(port uint16) netip.AddrPort { return netip.AddrPortFrom(Loopback, port) }

// Seed returns the seed of a test: the value of the -seed flag when the test
// binary registered one and it is non-zero, otherwise a hash of the test's
// name (stable from run to run). It logs the seed so that a failure can be
// replayed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	var seed uint64
	if f := flag.Lookup("seed"); f != nil {
		s := f.Value.String()
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			seed = v
		} else if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			seed = uint64(v)
		}
	}
	if seed == 0 {
		h := fnv.New64a()
		h.Write([]byte(t.Name()))
		seed = h.Sum64()
	}
	t.Logf("seed=%d (replay with -seed=%d)", seed, seed)
	return seed
}

// SubSeed derives the seed of one random generator from a test seed and a
// label naming the generator, so that every generator of a test is
// reproducible from the one seed.
func SubSeed(seed uint64, label string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(label))
	x := seed ^ h.Sum64()
	// splitmix64 finalizer: nearby seeds give unrelated streams.
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	if x == 0 {
		x = 1 // RandSeed 0 would mean "random"
	}
	return x
}

// Options configures a Cluster.
type Options struct {
	// Network configures the in-memory network. MTU 0 means
	// chitchat.MaxDatagramSize (65,507 bytes, as upstream's test transport);
	// Seed is replaced by one derived from the cluster seed.
	Network transport.NetworkConfig

	// Config returns the base configuration of a node; AddNode sets ID and
	// Seeds and RandSeed on it, then applies WithConfig. Nil means
	// LibConfig.
	Config func(id chitchat.NodeID) chitchat.Config

	// Seed is the cluster seed; 0 means Seed(t).
	Seed uint64
}

// LibConfig is the configuration of upstream's lib.rs integration tests
// (start_node of upstream's lib.rs tests): cluster "default-cluster", gossip every 100 ms,
// failure detector {phi 5, initial interval 100 ms, dead-node grace 20 s},
// tombstones kept 3,600 s.
func LibConfig(id chitchat.NodeID) chitchat.Config {
	cfg := chitchat.Config{
		ID:                           id,
		ClusterID:                    "default-cluster",
		GossipInterval:               100 * time.Millisecond,
		MarkedForDeletionGracePeriod: 3600 * time.Second,
	}
	cfg.FailureDetector.PhiThreshold = 5
	cfg.FailureDetector.InitialInterval = 100 * time.Millisecond
	cfg.FailureDetector.DeadNodeGracePeriod = 20 * time.Second
	return cfg
}

// ForTest is upstream's ChitchatConfig::for_test(port): id
// ("node-<port>", 0, 127.0.0.1:port), cluster "default-cluster", gossip
// every 50 ms, failure detector defaults, tombstones kept 10,000 s.
func ForTest(port uint16) chitchat.Config { return ForTestConfig(ForLocalTest(port)) }

// ForTestConfig is ForTest for any id; it can serve as Options.Config.
func ForTestConfig(id chitchat.NodeID) chitchat.Config {
	return chitchat.Config{
		ID:                           id,
		ClusterID:                    "default-cluster",
		GossipInterval:               50 * time.Millisecond,
		MarkedForDeletionGracePeriod: 10000 * time.Second,
	}
}

// ForLocalTest is upstream's ChitchatId::for_local_test(port):
// ("node-<port>", 0, 127.0.0.1:port).
func ForLocalTest(port uint16) chitchat.NodeID {
	return chitchat.NodeID{Name: fmt.Sprintf("node-%d", port), Addr: Addr(port)}
}

// Cluster is a set of Servers on one in-memory network. Nodes are numbered
// from 0 in the order they were added; a stopped node keeps its number. A
// Cluster is used by the test goroutine only.
type Cluster struct {
	t     testing.TB
	net   *transport.Network
	seed  uint64
	base  func(chitchat.NodeID) chitchat.Config
	nodes []*node
	start time.Time
	port  uint16 // next port tried for AddNode(name, 0)
}

type node struct {
	cfg     chitchat.Config
	initial []chitchat.KeyValue
	srv     *chitchat.Server // nil while stopped
	spawns  int
}

// New creates a cluster and its network, and registers a cleanup that shuts
// every running node down (reporting termination errors). Call it inside
// the synctest bubble.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	seed := opts.Seed
	if seed == 0 {
		seed = Seed(t)
	}
	ncfg := opts.Network
	if ncfg.MTU == 0 {
		ncfg.MTU = chitchat.MaxDatagramSize
	}
	ncfg.Seed = SubSeed(seed, "network")
	n, err := transport.NewNetwork(ncfg)
	if err != nil {
		t.Fatalf("chitchattest: network: %v", err)
	}
	base := opts.Config
	if base == nil {
		base = LibConfig
	}
	c := &Cluster{t: t, net: n, seed: seed, base: base, start: time.Now(), port: 20000}
	t.Cleanup(c.Close)
	return c
}

// Net returns the cluster's network (for statistics, drops, and cuts between
// addresses that have no node yet).
func (c *Cluster) Net() *transport.Network { return c.net }

// TestSeed returns the cluster seed.
func (c *Cluster) TestSeed() uint64 { return c.seed }

// Elapsed returns the virtual time since the cluster was created.
func (c *Cluster) Elapsed() time.Duration { return time.Since(c.start) }

// NodeOption customizes one node.
type NodeOption func(*nodeOptions)

type nodeOptions struct {
	seeds      []string
	seedsSet   bool
	configure  []func(*chitchat.Config)
	kvs        []chitchat.KeyValue
	kvsSet     bool
	generation *uint64
}

// WithSeeds sets the node's seeds ("ip:port" or "host:port"). Without it a
// node is seeded with every node running when it is added (upstream's
// simulator); WithSeeds() with no argument means no seeds.
func WithSeeds(seeds ...string) NodeOption {
	return func(o *nodeOptions) { o.seeds, o.seedsSet = seeds, true }
}

// WithSeedNodes seeds the node with the addresses of the given nodes.
func (c *Cluster) WithSeedNodes(idx ...int) NodeOption {
	seeds := make([]string, 0, len(idx))
	for _, i := range idx {
		seeds = append(seeds, c.nodes[i].cfg.ID.Addr.String())
	}
	return WithSeeds(seeds...)
}

// WithConfig changes the node's configuration after the base configuration,
// ID, seeds and RandSeed were set. Several WithConfig apply in order.
func WithConfig(f func(*chitchat.Config)) NodeOption {
	return func(o *nodeOptions) { o.configure = append(o.configure, f) }
}

// WithKeyValues sets the node's initial key-values.
func WithKeyValues(kvs ...chitchat.KeyValue) NodeOption {
	return func(o *nodeOptions) { o.kvs, o.kvsSet = kvs, true }
}

// WithGeneration sets the generation of the node's ID.
func WithGeneration(g uint64) NodeOption {
	return func(o *nodeOptions) { o.generation = &g }
}

// AddNode starts a node named name on 127.0.0.1:port (port 0 picks an unused
// port) and returns its number. It fails the test if the node cannot start.
func (c *Cluster) AddNode(name string, port uint16, opts ...NodeOption) int {
	c.t.Helper()
	if port == 0 {
		port = c.freePort()
	}
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := chitchat.NodeID{Name: name, Addr: Addr(port)}
	if o.generation != nil {
		id.Generation = *o.generation
	}
	cfg := c.base(id)
	cfg.ID = id
	if o.seedsSet {
		cfg.Seeds = slices.Clone(o.seeds)
	} else {
		cfg.Seeds = nil
		for _, n := range c.nodes {
			if n.srv != nil {
				cfg.Seeds = append(cfg.Seeds, n.cfg.ID.Addr.String())
			}
		}
	}
	cfg.RandSeed = SubSeed(c.seed, fmt.Sprintf("node/%s/%d/%d", id.Name, id.Generation, len(c.nodes)))
	for _, f := range o.configure {
		f(&cfg)
	}
	n := &node{cfg: cfg, initial: o.kvs}
	c.nodes = append(c.nodes, n)
	c.spawn(len(c.nodes) - 1)
	return len(c.nodes) - 1
}

func (c *Cluster) freePort() uint16 {
	for {
		p := c.port
		c.port++
		used := false
		for _, n := range c.nodes {
			if n.cfg.ID.Addr.Port() == p || n.cfg.ListenAddr.Port() == p {
				used = true
				break
			}
		}
		if !used {
			return p
		}
	}
}

func (c *Cluster) spawn(i int) {
	c.t.Helper()
	n := c.nodes[i]
	srv, err := chitchat.Spawn(c.t.Context(), n.cfg, c.net, n.initial...)
	if err != nil {
		c.t.Fatalf("chitchattest: start node %d (%v): %v", i, n.cfg.ID, err)
	}
	n.srv = srv
	n.spawns++
}

// Len returns the number of nodes ever added.
func (c *Cluster) Len() int { return len(c.nodes) }

// Node returns the server of node i; nil while it is stopped.
func (c *Cluster) Node(i int) *chitchat.Server { return c.nodes[i].srv }

// ID returns the current ID of node i.
func (c *Cluster) ID(i int) chitchat.NodeID { return c.nodes[i].cfg.ID }

// IDs returns the IDs of the given nodes, or of every node when idx is
// empty.
func (c *Cluster) IDs(idx ...int) []chitchat.NodeID {
	if len(idx) == 0 {
		for i := range c.nodes {
			idx = append(idx, i)
		}
	}
	ids := make([]chitchat.NodeID, 0, len(idx))
	for _, i := range idx {
		ids = append(ids, c.nodes[i].cfg.ID)
	}
	return ids
}

// Config returns the configuration node i was last started with.
func (c *Cluster) Config(i int) chitchat.Config { return c.nodes[i].cfg }

// Running returns the numbers of the running nodes.
func (c *Cluster) Running() []int {
	var r []int
	for i, n := range c.nodes {
		if n.srv != nil {
			r = append(r, i)
		}
	}
	return r
}

// Shutdown stops node i, waits for its goroutines and returns its
// termination error. Stopping a stopped node returns nil.
func (c *Cluster) Shutdown(i int) error {
	n := c.nodes[i]
	if n.srv == nil {
		return nil
	}
	err := n.srv.Shutdown()
	n.srv = nil
	return err
}

// MustShutdown is Shutdown failing the test on a termination error.
func (c *Cluster) MustShutdown(i int) {
	c.t.Helper()
	if err := c.Shutdown(i); err != nil {
		c.t.Fatalf("chitchattest: node %d (%v) terminated with error: %v", i, c.ID(i), err)
	}
}

// Restart stops node i if it is running and starts it again with the same
// configuration (same ID unless newGeneration, which increments the
// generation) and the same initial key-values; opts override them as for
// AddNode, except that without WithSeeds the seeds are kept.
func (c *Cluster) Restart(i int, newGeneration bool, opts ...NodeOption) *chitchat.Server {
	c.t.Helper()
	c.MustShutdown(i)
	n := c.nodes[i]
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if newGeneration {
		n.cfg.ID.Generation++
	}
	if o.generation != nil {
		n.cfg.ID.Generation = *o.generation
	}
	if o.seedsSet {
		n.cfg.Seeds = slices.Clone(o.seeds)
	}
	if o.kvsSet {
		n.initial = o.kvs
	}
	n.cfg.RandSeed = SubSeed(c.seed, fmt.Sprintf("node/%s/%d/%d/restart%d", n.cfg.ID.Name, n.cfg.ID.Generation, i, n.spawns))
	for _, f := range o.configure {
		f(&n.cfg)
	}
	c.spawn(i)
	return n.srv
}

// Close shuts every running node down and reports termination errors with
// t.Errorf. New registers it as a cleanup; calling it twice is harmless.
func (c *Cluster) Close() {
	for i := range c.nodes {
		if err := c.Shutdown(i); err != nil {
			c.t.Errorf("chitchattest: node %d (%v) terminated with error: %v", i, c.ID(i), err)
		}
	}
}

// Cut blocks both directions between nodes i and j.
func (c *Cluster) Cut(i, j int) { c.net.Cut(c.ID(i).Addr, c.ID(j).Addr) }

// Restore undoes Cut(i, j).
func (c *Cluster) Restore(i, j int) { c.net.Restore(c.ID(i).Addr, c.ID(j).Addr) }

// Isolate cuts node i from every other address until Rejoin(i).
func (c *Cluster) Isolate(i int) { c.net.Isolate(c.ID(i).Addr) }

// Rejoin undoes Isolate(i).
func (c *Cluster) Rejoin(i int) { c.net.Rejoin(c.ID(i).Addr) }
