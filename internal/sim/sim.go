// Package sim is a deterministic discrete-event simulator of a chitchat
// cluster: N Engines (the same code a Server runs) exchanging messages over a
// modelled network with latency, jitter, loss and partitions, in virtual
// time. There are no goroutines and one seeded random source, so a run
// replays exactly from its seed; a 100-node minute takes well under a second.
//
// It complements the synctest-based tests of real Servers: those cover the
// driver; this covers the protocol at scales and for durations that only a
// simulator reaches (thousands of nodes, hours of virtual time, loss sweeps).
package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Config describes a simulated cluster.
type Config struct {
	// N is the number of nodes. Node i is "node_i" at 127.0.0.1:10000+i.
	N int
	// Seed drives everything random: node RNGs, round phases, loss, jitter.
	Seed uint64
	// GossipInterval is the round period of every node. Default 300ms.
	GossipInterval time.Duration
	// Latency is the one-way delay of every datagram. Default 0: delivered
	// at the instant it is sent (after the sender's current step).
	Latency time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) per datagram;
	// with Jitter > 0 datagrams can be reordered.
	Jitter time.Duration
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Codec sends every message through the real encoder and decoder. Off,
	// messages are passed as values and sized with chitchat.EncodedSize:
	// the same byte counts, several times faster at thousands of nodes.
	Codec bool
	// Seeds lists the seed nodes of every node. Default: node 0.
	Seeds []int
	// Node adjusts node i's configuration (after the defaults below).
	Node func(i int, c *chitchat.Config)
	// Start is the virtual time at which the simulation starts.
	// Default 2025-01-01T00:00:00Z.
	Start time.Time
	// StartSpread staggers node starts uniformly over [0, StartSpread).
	// Default: one gossip interval, like processes started one after the
	// other.
	StartSpread time.Duration
}

func (c *Config) defaults() {
	if c.GossipInterval == 0 {
		c.GossipInterval = 300 * time.Millisecond
	}
	if c.Seeds == nil {
		c.Seeds = []int{0}
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.StartSpread == 0 {
		c.StartSpread = c.GossipInterval
	}
}

// Addr returns the address of node i.
func Addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(10000+i))
}

// Node is one simulated node.
type Node struct {
	Index  int
	Engine *chitchat.Engine
	up     bool
	epoch  int // incremented at each kill, so stale tick events are ignored
	Stats  Stats
}

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.up }

// Stats counts a node's (or the network's) traffic.
type Stats struct {
	SentMessages, SentBytes         uint64
	ReceivedMessages, ReceivedBytes uint64
	Dropped                         uint64 // lost, cut, or sent to a dead node
	StreamBytes                     uint64 // stream exchanges' messages sent
	// OverMTU counts the datagrams dropped for exceeding Sim.MTU (also
	// counted in Dropped, not in SentMessages).
	OverMTU uint64
	// MaxDatagramBytes is the largest datagram the node tried to send,
	// those dropped for exceeding Sim.MTU included; in network totals, the
	// largest of any node.
	MaxDatagramBytes int
}

func (s *Stats) add(o Stats) {
	s.SentMessages += o.SentMessages
	s.SentBytes += o.SentBytes
	s.ReceivedMessages += o.ReceivedMessages
	s.ReceivedBytes += o.ReceivedBytes
	s.Dropped += o.Dropped
	s.StreamBytes += o.StreamBytes
	s.OverMTU += o.OverMTU
	s.MaxDatagramBytes = max(s.MaxDatagramBytes, o.MaxDatagramBytes)
}

// Sim is a simulated cluster. It is not safe for concurrent use.
type Sim struct {
	cfg    Config
	now    time.Time
	rng    *rand.Rand
	nodes  []*Node
	byAddr map[netip.AddrPort]*Node
	events events
	seq    uint64
	cut    map[[2]int]bool
	side   []int // partition side of each node; nil when not partitioned
	// MTU, if > 0, drops datagrams larger than it.
	MTU int
	// AfterStep, if set, is called with a node's index after each of its
	// rounds and each message it processed, once what they produced was
	// sent: the points at which the node's live-nodes watch may have
	// changed. It must not run the simulation.
	AfterStep func(i int)
}

// New builds a simulated cluster and schedules every node's first round.
func New(cfg Config) (*Sim, error) {
	cfg.defaults()
	if cfg.N < 1 {
		return nil, errors.New("sim: N must be at least 1")
	}
	if cfg.N > 55000 {
		return nil, errors.New("sim: N must be at most 55000 (one port each)")
	}
	if cfg.Loss < 0 || cfg.Loss > 1 {
		return nil, fmt.Errorf("sim: Loss %v is not in [0,1]", cfg.Loss)
	}
	s := &Sim{
		cfg:    cfg,
		now:    cfg.Start,
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		byAddr: make(map[netip.AddrPort]*Node, cfg.N),
		cut:    make(map[[2]int]bool),
	}
	for i := range cfg.N {
		n := &Node{Index: i}
		if err := s.boot(n, 0); err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
		s.byAddr[Addr(i)] = n
	}
	return s, nil
}

// NodeConfig returns the configuration node i runs with.
func (s *Sim) NodeConfig(i int, generation uint64) chitchat.Config {
	c := chitchat.Config{
		ID:                           chitchat.NodeID{Name: fmt.Sprintf("node_%d", i), Generation: generation, Addr: Addr(i)},
		ClusterID:                    "sim",
		GossipInterval:               s.cfg.GossipInterval,
		MarkedForDeletionGracePeriod: 10000 * time.Second,
	}
	c.FailureDetector.InitialInterval = s.cfg.GossipInterval
	for _, j := range s.cfg.Seeds {
		c.Seeds = append(c.Seeds, Addr(j).String())
	}
	if s.cfg.Node != nil {
		s.cfg.Node(i, &c)
	}
	return c
}

// boot starts (or restarts) node n with a fresh engine.
func (s *Sim) boot(n *Node, generation uint64) error {
	cfg := s.NodeConfig(n.Index, generation)
	seed := s.rng.Uint64()
	e, err := chitchat.NewEngine(cfg, rand.New(rand.NewPCG(seed, uint64(n.Index))), nil)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", n.Index, err)
	}
	n.Engine = e
	n.up = true
	n.epoch++
	var phase time.Duration
	if s.cfg.StartSpread > 0 {
		phase = time.Duration(s.rng.Int64N(int64(s.cfg.StartSpread)))
	}
	s.push(event{at: s.now.Add(phase), kind: evTick, node: n.Index, epoch: n.epoch})
	return nil
}

// Now returns the virtual time.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed returns the virtual time since the start.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(s.cfg.Start) }

// N returns the number of nodes (up or down).
func (s *Sim) N() int { return len(s.nodes) }

// Node returns node i.
func (s *Sim) Node(i int) *Node { return s.nodes[i] }

// Engine returns node i's engine.
func (s *Sim) Engine(i int) *chitchat.Engine { return s.nodes[i].Engine }

// SetLoss changes the loss probability.
func (s *Sim) SetLoss(p float64) { s.cfg.Loss = p }

// Kill stops node i: it no longer ticks and datagrams to it are lost.
func (s *Sim) Kill(i int) {
	n := s.nodes[i]
	n.up = false
	n.epoch++
}

// Restart boots node i again with a new engine and the given generation
// (use a larger one than before, as a real restart would).
func (s *Sim) Restart(i int, generation uint64) error {
	s.Kill(i)
	return s.boot(s.nodes[i], generation)
}

// Cut blocks datagrams between i and j, both ways.
func (s *Sim) Cut(i, j int) { s.cut[pair(i, j)] = true }

// Restore undoes Cut.
func (s *Sim) Restore(i, j int) { delete(s.cut, pair(i, j)) }

// Partition splits the cluster: nodes in different groups cannot talk.
// Nodes in no group form a group of their own.
func (s *Sim) Partition(groups ...[]int) {
	s.side = make([]int, len(s.nodes))
	for g, members := range groups {
		for _, i := range members {
			s.side[i] = g + 1
		}
	}
}

// Heal ends a Partition (cuts made with Cut stay).
func (s *Sim) Heal() { s.side = nil }

func (s *Sim) blocked(i, j int) bool {
	if s.side != nil && s.side[i] != s.side[j] {
		return true
	}
	return s.cut[pair(i, j)]
}

func pair(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// Stats returns the network totals.
func (s *Sim) Stats() Stats {
	var t Stats
	for _, n := range s.nodes {
		t.add(n.Stats)
	}
	return t
}

type eventKind uint8

const (
	evTick eventKind = iota
	evDeliver
)

type event struct {
	at    time.Time
	seq   uint64
	kind  eventKind
	node  int              // tick: the node; deliver: the receiver
	epoch int              // tick: the node's epoch when scheduled
	from  int              // deliver: the sender
	msg   chitchat.Message // deliver: the message, when not sent as wire
	wire  []byte           // deliver: the datagram (Config.Codec only)
	size  int              // deliver: the datagram's size in bytes
}

type events []event

func (q events) Len() int { return len(q) }
func (q events) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q events) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *events) Push(x any)   { *q = append(*q, x.(event)) }
func (q *events) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *Sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.events, e)
}

// step runs the next event. It returns false when there is none.
func (s *Sim) step() bool {
	if len(s.events) == 0 {
		return false
	}
	e := heap.Pop(&s.events).(event)
	s.now = e.at
	n := s.nodes[e.node]
	switch e.kind {
	case evTick:
		if !n.up || e.epoch != n.epoch {
			return true
		}
		r := n.Engine.Tick(s.now)
		if len(r.Targets) > 0 {
			// One Syn for every target: encode (or size) it once.
			wire, size := s.encode(r.Syn)
			for _, to := range r.Targets {
				s.send(n, to, r.Syn, wire, size)
			}
		}
		s.sendPushes(n, r.Pushes)
		for _, to := range r.Streams {
			s.stream(n, to)
		}
		s.push(event{at: s.now.Add(s.cfg.GossipInterval), kind: evTick, node: n.Index, epoch: n.epoch})
		s.afterStep(n.Index)
	case evDeliver:
		if !n.up {
			s.nodes[e.from].Stats.Dropped++
			return true
		}
		m := e.msg
		if e.wire != nil {
			var err error
			if m, err = chitchat.DecodeMessage(e.wire); err != nil {
				panic(fmt.Sprintf("sim: node %d: decoding a datagram of node %d: %v", e.node, e.from, err))
			}
		}
		n.Stats.ReceivedMessages++
		n.Stats.ReceivedBytes += uint64(e.size)
		// Delivered from the sender's address, as if authenticated: the
		// simulated network does not spoof.
		out := n.Engine.Step(s.now, chitchat.Inbound{From: Addr(e.from), Authentic: true, Size: e.size}, m)
		if out.Reply != nil {
			wire, size := s.encode(out.Reply)
			s.send(n, Addr(e.from), out.Reply, wire, size)
		}
		s.sendPushes(n, out.Pushes)
		for _, to := range out.Streams {
			s.stream(n, to)
		}
		s.afterStep(n.Index)
	}
	return true
}

// stream runs a stream exchange from n with the node at to, at once (a
// stream is reliable and, here, instantaneous): Syn, SynAck, Ack.
func (s *Sim) stream(n *Node, to netip.AddrPort) {
	dst, ok := s.byAddr[to]
	if !ok || !dst.up || s.blocked(n.Index, dst.Index) {
		return
	}
	var m chitchat.Message = n.Engine.CreateStreamSyn(s.now)
	sides := [2]*Node{n, dst}
	for i := 0; m != nil && i < 3; i++ {
		from, recv := sides[i%2], sides[(i+1)%2]
		size := chitchat.EncodedSize(m)
		from.Stats.StreamBytes += uint64(size)
		out := recv.Engine.Step(s.now, chitchat.Inbound{From: Addr(from.Index), Authentic: true, Stream: true, Size: size}, m)
		s.sendPushes(recv, out.Pushes)
		if out.Welcome != nil {
			// The frame after the SynAck: the answerer's live nodes.
			size := chitchat.EncodedSize(out.Welcome)
			recv.Stats.StreamBytes += uint64(size)
			w := from.Engine.Step(s.now, chitchat.Inbound{From: Addr(recv.Index), Authentic: true, Stream: true, Size: size}, out.Welcome)
			s.sendPushes(from, w.Pushes)
		}
		m = out.Reply
	}
}

func (s *Sim) afterStep(i int) {
	if s.AfterStep != nil {
		s.AfterStep(i)
	}
}

// sendPushes sends pushes from n.
func (s *Sim) sendPushes(n *Node, pushes []chitchat.Envelope) {
	for _, p := range pushes {
		wire, size := s.encode(p.Msg)
		s.send(n, p.To, p.Msg, wire, size)
	}
}

// Set writes key=value on node i, as Server.Set does: the write, then
// the push of the news.
func (s *Sim) Set(i int, key, value string) error {
	n := s.nodes[i]
	if err := n.Engine.Set(key, value); err != nil {
		return err
	}
	s.sendPushes(n, n.Engine.Flush(s.now))
	return nil
}

// encode returns m's datagram with Config.Codec (nil without it) and its
// size in bytes either way.
func (s *Sim) encode(m chitchat.Message) (wire []byte, size int) {
	if s.cfg.Codec {
		wire = chitchat.EncodeMessage(m)
		return wire, len(wire)
	}
	return nil, chitchat.EncodedSize(m)
}

// send models one datagram from n to the address to: m, encoded as wire
// (nil without Config.Codec), size bytes long. Receivers only read wire, so
// one encoding can go to several of them.
func (s *Sim) send(n *Node, to netip.AddrPort, m chitchat.Message, wire []byte, size int) {
	n.Stats.MaxDatagramBytes = max(n.Stats.MaxDatagramBytes, size)
	if s.MTU > 0 && size > s.MTU {
		n.Stats.Dropped++
		n.Stats.OverMTU++
		return
	}
	n.Stats.SentMessages++
	n.Stats.SentBytes += uint64(size)
	dst, ok := s.byAddr[to]
	if !ok || s.blocked(n.Index, dst.Index) || (s.cfg.Loss > 0 && s.rng.Float64() < s.cfg.Loss) {
		n.Stats.Dropped++
		return
	}
	delay := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		delay += time.Duration(s.rng.Int64N(int64(s.cfg.Jitter)))
	}
	s.push(event{at: s.now.Add(delay), kind: evDeliver, node: dst.Index, from: n.Index, msg: m, wire: wire, size: size})
}

// RunFor advances virtual time by d.
func (s *Sim) RunFor(d time.Duration) {
	end := s.now.Add(d)
	for len(s.events) > 0 && !s.events[0].at.After(end) {
		s.step()
	}
	s.now = end
}

// RunUntil advances virtual time until cond holds, checking it every
// checkEvery of virtual time, for at most limit. It returns the virtual time
// it took and whether cond held.
func (s *Sim) RunUntil(limit, checkEvery time.Duration, cond func() bool) (time.Duration, bool) {
	start := s.now
	for {
		if cond() {
			return s.now.Sub(start), true
		}
		if s.now.Sub(start) >= limit {
			return s.now.Sub(start), false
		}
		s.RunFor(checkEvery)
	}
}
