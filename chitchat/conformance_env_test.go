package chitchat

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// scenarioEnv is the world of one testdata/scenarios file: named nodes, each
// an Engine, the datagrams in flight between them, and a virtual clock that
// only "advance" moves. Nothing is sent unless a command says so, and every
// datagram goes through the wire codec.
type scenarioEnv struct {
	now      time.Time
	nodes    map[string]*scenarioNode
	byAddr   map[netip.AddrPort]*scenarioNode
	inFlight []confDatagram
}

type scenarioNode struct {
	name string
	e    *Engine
	mtu  int
}

// confDatagram is an encoded message in flight.
type confDatagram struct {
	from, to *scenarioNode
	b        []byte
}

// scenarioEpoch is the virtual time at which every scenario starts; output
// shows times relative to it.
var scenarioEpoch = time.Unix(1_700_000_000, 0)

func newScenarioEnv() *scenarioEnv {
	return &scenarioEnv{now: scenarioEpoch, nodes: map[string]*scenarioNode{}, byAddr: map[netip.AddrPort]*scenarioNode{}}
}

// handle runs one command. A command is a sentence of words; the first one
// or two pick the handler.
func (env *scenarioEnv) handle(t *testing.T, td *datadriven.TestData) string {
	w := confWords(td)
	switch {
	case w[0] == "add-node":
		return env.addNode(t, td, w[1:])
	case w[0] == "deliver":
		return env.deliver(t, td, w[1:])
	case w[0] == "drop":
		return env.drop(t, td, w[1:])
	case w[0] == "advance":
		return env.advance(t, td, w[1:])
	case w[0] == "tick":
		return env.tick(t, td, w[1:])
	case w[0] == "forge":
		return env.forge(t, td, w[1:])
	case len(w) == 2 && w[0] == "everyone" && w[1] == "gossips":
		return env.everyoneGossips(t, td)
	case len(w) >= 2 && w[1] == "set":
		return env.set(t, td, env.node(t, td, w[0]), w[2:])
	case len(w) >= 2 && w[1] == "delete":
		return env.del(t, td, env.node(t, td, w[0]), w[2:])
	case len(w) >= 2 && w[1] == "leaves":
		return env.leave(t, td, env.node(t, td, w[0]), w[2:])
	case len(w) == 4 && w[1] == "gossips" && w[2] == "with":
		return env.gossip(t, td, env.node(t, td, w[0]), env.node(t, td, w[3]))
	case len(w) >= 2 && strings.HasSuffix(w[0], "'s") && w[1] == "view":
		return env.view(t, td, env.node(t, td, strings.TrimSuffix(w[0], "'s")), w[2:])
	}
	td.Fatalf(t, "unknown command %q", strings.Join(w, " "))
	return ""
}

// confWords returns the directive line as words: datadriven parses "a set k=v"
// as the command "a" and the arguments "set" and "k=v".
func confWords(td *datadriven.TestData) []string {
	w := []string{td.Cmd}
	for _, a := range td.CmdArgs {
		w = append(w, a.String())
	}
	return w
}

func (env *scenarioEnv) node(t *testing.T, td *datadriven.TestData, name string) *scenarioNode {
	n, ok := env.nodes[name]
	if !ok {
		td.Fatalf(t, "no node %q (add-node it first)", name)
	}
	return n
}

// addNode creates a node. Nodes get 127.0.0.1:7001, :7002... in order of
// creation, generation 1 unless gen= says otherwise, cluster "conformance"
// and the library's defaults but for the options given.
//
//	add-node NAME [gen=N] [cluster=ID] [mtu=BYTES] [initial-interval=DUR]
//	              [phi=X] [dead-grace=DUR] [tombstone-grace=DUR]
//	              [push] [push-fanout=N] [seeds=NAME|IP:PORT,...]
//	              [bucket-target=N] [max-buckets=N]
//
// push turns the push of news on (scenarios show anti-entropy alone
// otherwise). bucket-target and max-buckets are the Engine's test knobs
// (nodes per bucket, default 16; buckets a Syn covers at most, default
// all that fit): they make a handful of nodes use partial coverage.
//
// Output: the node's id.
func (env *scenarioEnv) addNode(t *testing.T, td *datadriven.TestData, args []string) string {
	if len(args) == 0 {
		td.Fatalf(t, "usage: add-node NAME [option=value...]")
	}
	name := args[0]
	if _, dup := env.nodes[name]; dup {
		td.Fatalf(t, "node %q exists", name)
	}
	port := uint16(7001 + len(env.nodes))
	cfg := Config{
		ID:        NodeID{Name: name, Generation: 1, Addr: netip.AddrPortFrom(localhost, port)},
		ClusterID: "conformance",
		// Scenarios show anti-entropy unless a node is added with "push".
		DisablePush: true,
	}
	var tune tuning
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "push":
			cfg.DisablePush = false
		case "push-fanout":
			_, err = fmt.Sscan(v, &cfg.PushFanout)
		case "seeds":
			for _, seed := range strings.Split(v, ",") {
				if n, ok := env.nodes[seed]; ok {
					seed = n.e.Self().Addr.String()
				}
				cfg.Seeds = append(cfg.Seeds, seed)
			}
		case "bucket-target":
			_, err = fmt.Sscan(v, &tune.bucketTarget)
		case "max-buckets":
			_, err = fmt.Sscan(v, &tune.maxBuckets)
		case "gen":
			_, err = fmt.Sscan(v, &cfg.ID.Generation)
		case "mtu":
			_, err = fmt.Sscan(v, &cfg.MaxDatagramSize)
		case "phi":
			_, err = fmt.Sscan(v, &cfg.FailureDetector.PhiThreshold)
		case "initial-interval":
			cfg.FailureDetector.InitialInterval, err = time.ParseDuration(v)
		case "dead-grace":
			cfg.FailureDetector.DeadNodeGracePeriod, err = time.ParseDuration(v)
		case "tombstone-grace":
			cfg.MarkedForDeletionGracePeriod, err = time.ParseDuration(v)
		case "cluster":
			cfg.ClusterID = v
		default:
			td.Fatalf(t, "add-node: unknown option %q", k)
		}
		if err != nil {
			td.Fatalf(t, "add-node: %s: %v", a, err)
		}
	}
	e := confNewEngine(t, td, cfg)
	e.tune = tune
	n := &scenarioNode{name: name, e: e, mtu: e.Config().MaxDatagramSize}
	env.nodes[name] = n
	env.byAddr[cfg.ID.Addr] = n
	return fmt.Sprintf("%s is %v", name, cfg.ID)
}

// set writes keys on a node, each with the node's next version (setting the
// value a key holds is a no-op).
//
//	NAME set KEY=VALUE [KEY=VALUE...]
//
// Output: the node's max version.
func (env *scenarioEnv) set(t *testing.T, td *datadriven.TestData, n *scenarioNode, args []string) string {
	if len(args) == 0 {
		td.Fatalf(t, "usage: NAME set KEY=VALUE [KEY=VALUE...]")
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			td.Fatalf(t, "set: %q is not KEY=VALUE", a)
		}
		if err := n.e.Set(k, v); err != nil {
			return fmt.Sprintf("%s: %v", n.name, err)
		}
	}
	out := []string{fmt.Sprintf("%s max_version=%d", n.name, env.self(n).MaxVersion())}
	return strings.Join(append(out, env.flush(t, td, n)...), "\n")
}

// flush queues the pushes of a node's news, as a Server does after every
// write (nothing without push), and returns what it queued.
func (env *scenarioEnv) flush(t *testing.T, td *datadriven.TestData, n *scenarioNode) []string {
	return env.queuePushes(t, td, n, n.e.Flush(env.now))
}

// queuePushes queues pushes from n and returns a line for each.
func (env *scenarioEnv) queuePushes(t *testing.T, td *datadriven.TestData, n *scenarioNode, pushes []Envelope) []string {
	var out []string
	for _, p := range pushes {
		to, ok := env.byAddr[p.To]
		if !ok {
			td.Fatalf(t, "%s pushes to %v, which is no node", n.name, p.To)
		}
		env.send(t, td, n, to, p.Msg)
		out = append(out, fmt.Sprintf("queued %s->%s Push (%d bytes)", n.name, to.name, len(env.inFlight[len(env.inFlight)-1].b)))
	}
	return out
}

// del deletes keys of a node: each becomes a tombstone with the next
// version, collected after the tombstone grace period.
//
//	NAME delete KEY [KEY...]
//
// Output: the node's max version, or that a key does not exist.
func (env *scenarioEnv) del(t *testing.T, td *datadriven.TestData, n *scenarioNode, keys []string) string {
	if len(keys) == 0 {
		td.Fatalf(t, "usage: NAME delete KEY [KEY...]")
	}
	var out []string
	for _, k := range keys {
		if !n.e.Delete(env.now, k) {
			out = append(out, fmt.Sprintf("%s: no key %q", n.name, k))
		}
	}
	out = append(out, fmt.Sprintf("%s max_version=%d", n.name, env.self(n).MaxVersion()))
	return strings.Join(append(out, env.flush(t, td, n)...), "\n")
}

// leave makes a node leave gracefully: it sets the reserved key LeftKey,
// which peers read as "left" as soon as they learn it.
//
//	NAME leaves
func (env *scenarioEnv) leave(t *testing.T, td *datadriven.TestData, n *scenarioNode, args []string) string {
	if len(args) != 0 {
		td.Fatalf(t, "usage: NAME leaves")
	}
	if err := n.e.Set(LeftKey, "true"); err != nil {
		td.Fatalf(t, "leave: %v", err)
	}
	out := []string{fmt.Sprintf("%s max_version=%d", n.name, env.self(n).MaxVersion())}
	return strings.Join(append(out, env.flush(t, td, n)...), "\n")
}

// gossip queues a Syn from one node to another: the message a gossip round
// sends to each of its targets. Targets are chosen at random by Tick, so
// scenarios name them instead.
//
//	NAME gossips with OTHER
//
// Output: the queued datagram.
func (env *scenarioEnv) gossip(t *testing.T, td *datadriven.TestData, from, to *scenarioNode) string {
	env.send(t, td, from, to, from.e.CreateSyn(env.now))
	d := env.inFlight[len(env.inFlight)-1]
	return fmt.Sprintf("queued %s->%s Syn (%d bytes)", from.name, to.name, len(d.b))
}

// everyoneGossips queues a Syn from every node to every other node, in
// name order: one round of a full mesh, which gives every node direct
// evidence of every other (setups use it, usually with "deliver quiet").
//
//	everyone gossips
//
// Output: how many Syns are queued.
func (env *scenarioEnv) everyoneGossips(t *testing.T, td *datadriven.TestData) string {
	names := slices.Sorted(maps.Keys(env.nodes))
	queued := 0
	for _, a := range names {
		for _, b := range names {
			if a != b {
				from := env.nodes[a]
				env.send(t, td, from, env.nodes[b], from.e.CreateSyn(env.now))
				queued++
			}
		}
	}
	return fmt.Sprintf("queued %d Syns", queued)
}

// forge queues a message written by hand, as if FROM had sent it to TO:
// what a key holder (or, without encryption, anyone) can send. The input
// is the message in the JSON form of testdata/wire (see ../README.md);
// fields left out are empty.
//
//	forge FROM->TO
//	{"type": "Syn", "cluster_id": "conformance", "digest": [...]}
//
// Output: the queued datagram.
func (env *scenarioEnv) forge(t *testing.T, td *datadriven.TestData, args []string) string {
	if len(args) != 1 {
		td.Fatalf(t, "usage: forge FROM->TO, then the message as JSON")
	}
	fromName, toName, ok := strings.Cut(args[0], "->")
	if !ok {
		td.Fatalf(t, "usage: forge FROM->TO")
	}
	from, to := env.node(t, td, fromName), env.node(t, td, toName)
	m, err := confFromJSON(td.Input)
	if err != nil {
		td.Fatalf(t, "forge: %v", err)
	}
	env.send(t, td, from, to, m)
	d := env.inFlight[len(env.inFlight)-1]
	return fmt.Sprintf("queued %s->%s %v (%d bytes)", from.name, to.name, m.Type(), len(d.b))
}

// send encodes m and queues it, checking it fits the sender's datagram
// budget (a Syn too, which the library leaves to the transport).
func (env *scenarioEnv) send(t *testing.T, td *datadriven.TestData, from, to *scenarioNode, m Message) {
	b := EncodeMessage(m)
	if len(b) > from.mtu {
		td.Fatalf(t, "%s->%s %v of %d bytes exceeds the %d-byte budget", from.name, to.name, m.Type(), len(b), from.mtu)
	}
	env.inFlight = append(env.inFlight, confDatagram{from, to, b})
}

// deliver delivers the datagrams in flight, oldest first, replies included,
// until none is left (or n have been delivered). Each is decoded and
// processed by its recipient, and the reply is queued to its sender.
//
//	deliver [n=COUNT] [quiet]
//
// Output: every delivered message (see confPrintMessage), or with quiet
// only how many of each type, then what is still in flight.
func (env *scenarioEnv) deliver(t *testing.T, td *datadriven.TestData, args []string) string {
	limit := -1
	quiet := false
	for _, a := range args {
		if a == "quiet" {
			quiet = true
			continue
		}
		if _, err := fmt.Sscanf(a, "n=%d", &limit); err != nil || limit < 1 {
			td.Fatalf(t, "usage: deliver [n=COUNT] [quiet]")
		}
	}
	counts := map[MessageType]int{}
	var out []string
	for delivered := 0; len(env.inFlight) > 0 && delivered != limit; delivered++ {
		d := env.inFlight[0]
		env.inFlight = env.inFlight[1:]
		m, err := DecodeMessage(d.b)
		if err != nil {
			td.Fatalf(t, "%s->%s: %v", d.from.name, d.to.name, err)
		}
		counts[m.Type()]++
		if !quiet {
			out = append(out, env.printMessage(d, m)...)
		}
		// Delivered as a network would: from the sender's address (as if
		// authenticated, so that a node's own Syn is direct evidence).
		o := d.to.e.Step(env.now, Inbound{From: d.from.e.Self().Addr, Authentic: true, Size: len(d.b)}, m)
		if o.Reply != nil {
			env.send(t, td, d.to, d.from, o.Reply)
		}
		env.queuePushes(t, td, d.to, o.Pushes)
	}
	if quiet && len(counts) > 0 {
		var parts []string
		for _, ty := range []MessageType{TypeSyn, TypeSynAck, TypeAck, TypeBadCluster, TypePush} {
			if counts[ty] > 0 {
				parts = append(parts, fmt.Sprintf("%d %v", counts[ty], ty))
			}
		}
		out = append(out, "delivered "+strings.Join(parts, ", "))
	}
	if len(out) == 0 {
		out = append(out, "nothing in flight")
	}
	return strings.Join(append(out, env.pending()...), "\n")
}

// drop discards the datagrams in flight from one node to another.
//
//	drop FROM->TO
//
// Output: what was dropped.
func (env *scenarioEnv) drop(t *testing.T, td *datadriven.TestData, args []string) string {
	if len(args) != 1 {
		td.Fatalf(t, "usage: drop FROM->TO")
	}
	fromName, toName, ok := strings.Cut(args[0], "->")
	if !ok {
		td.Fatalf(t, "usage: drop FROM->TO")
	}
	from, to := env.node(t, td, fromName), env.node(t, td, toName)
	var out []string
	kept := env.inFlight[:0]
	for _, d := range env.inFlight {
		if d.from == from && d.to == to {
			out = append(out, fmt.Sprintf("dropped %s->%s %v", from.name, to.name, MessageType(d.b[3])))
			continue
		}
		kept = append(kept, d)
	}
	env.inFlight = kept
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("nothing in flight from %s to %s", from.name, to.name))
	}
	return strings.Join(out, "\n")
}

// advance moves the virtual clock forward.
//
//	advance DURATION        (Go syntax: 500ms, 5s, 1h)
//
// Output: the time since the start of the scenario.
func (env *scenarioEnv) advance(t *testing.T, td *datadriven.TestData, args []string) string {
	if len(args) != 1 {
		td.Fatalf(t, "usage: advance DURATION")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < 0 {
		td.Fatalf(t, "advance: %q is not a duration >= 0", args[0])
	}
	env.now = env.now.Add(d)
	return fmt.Sprintf("t=%v", env.now.Sub(scenarioEpoch))
}

// tick runs a gossip round's bookkeeping on nodes (all of them with
// "all"): the self heartbeat grows, expired tombstones are collected, the
// failure detector judges every peer and dead nodes past their grace period
// are forgotten. The round's Syn is not sent: "gossips with" sends one.
//
//	tick NAME [NAME...] | tick all
//
// A node with push queues the pushes the round made due (news held back by
// the rate limit, notices: its announcement, deaths it found).
//
// Output: per node, its heartbeat and how it classifies its peers, then
// the pushes queued.
func (env *scenarioEnv) tick(t *testing.T, td *datadriven.TestData, names []string) string {
	if len(names) == 0 {
		td.Fatalf(t, "usage: tick NAME [NAME...] | tick all")
	}
	if len(names) == 1 && names[0] == "all" {
		names = slices.Sorted(func(yield func(string) bool) {
			for n := range env.nodes {
				if !yield(n) {
					return
				}
			}
		})
	}
	var out, queued []string
	for _, name := range names {
		n := env.node(t, td, name)
		queued = append(queued, env.queuePushes(t, td, n, n.e.Tick(env.now).Pushes)...)
		s := n.e.Snapshot(env.now)
		line := fmt.Sprintf("%s heartbeat=%d", n.name, env.self(n).Heartbeat())
		for _, group := range []struct {
			label string
			ids   []NodeID
		}{{"live", s.Live[1:]}, {"dead", s.Dead}, {"left", s.Left}} {
			if len(group.ids) > 0 {
				line += fmt.Sprintf(" %s=%s", group.label, confJoinNames(group.ids))
			}
		}
		out = append(out, line)
	}
	return strings.Join(append(out, queued...), "\n")
}

// view prints what a node knows of another (or of every node).
//
//	NAME's view of OTHER
//	NAME's view
//
// Output: a line per node, "NAME STATUS heartbeat=H max_version=M
// last_gc_version=G", then, for a single node, its entries in version
// order: "  vN KEY=VALUE", "  vN KEY deleted" (a tombstone), "  vN KEY=VALUE
// ttl" (deleted after the grace period). STATUS is self, live, dead, dead
// (scheduled for deletion: left out of digests), left, or new (not judged by
// the failure detector yet).
func (env *scenarioEnv) view(t *testing.T, td *datadriven.TestData, n *scenarioNode, args []string) string {
	s := n.e.Snapshot(env.now)
	if len(args) == 0 {
		var out []string
		for _, ns := range s.Nodes {
			out = append(out, env.stateLine(n, &s, ns))
		}
		return strings.Join(out, "\n")
	}
	if len(args) != 2 || args[0] != "of" {
		td.Fatalf(t, "usage: NAME's view [of OTHER]")
	}
	other := env.node(t, td, args[1])
	ns, ok := s.Node(other.e.Self())
	if !ok {
		return fmt.Sprintf("%s unknown", other.name)
	}
	out := []string{env.stateLine(n, &s, ns)}
	type entry struct {
		key string
		v   VersionedValue
	}
	var entries []entry
	for k, v := range ns.AllKeyValues() {
		entries = append(entries, entry{k, v})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.v.Version, b.v.Version) })
	for _, e := range entries {
		out = append(out, "  "+confKV(e.key, e.v.Value, e.v.Version, e.v.Status))
	}
	return strings.Join(out, "\n")
}

func (env *scenarioEnv) self(n *scenarioNode) *NodeState {
	ns, _ := n.e.NodeState(n.e.Self())
	return ns
}

// pending lists the datagrams still in flight.
func (env *scenarioEnv) pending() []string {
	var out []string
	for _, d := range env.inFlight {
		out = append(out, fmt.Sprintf("in flight: %s->%s %v", d.from.name, d.to.name, MessageType(d.b[3])))
	}
	return out
}

// confNewEngine returns an Engine for cfg with a random generator seeded
// from its port: scenarios and vectors are reproducible.
func confNewEngine(t *testing.T, td *datadriven.TestData, cfg Config) *Engine {
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(uint64(cfg.ID.Addr.Port()), 1)), nil)
	if err != nil {
		td.Fatalf(t, "%v", err)
	}
	return e
}
