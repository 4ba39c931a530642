package chitchat

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Shared fixtures of the core tests.
//
// The flag is not called -seed so that it cannot collide with a flag of the
// server tests that live in the same package.
var coreSeed = flag.Uint64("coreseed", 0, "override the seed of the randomized core tests (0: fixed per-test seeds)")

// fataler is the part of testing.TB that *rapid.T also implements, for
// helpers shared by plain tests and rapid properties.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// t0 is the virtual epoch of every core test: no test reads the wall clock.
var t0 = time.Unix(1_700_000_000, 0)

// localhost is 127.0.0.1.
var localhost = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// id is upstream's ChitchatId::for_local_test(port).
func id(port uint16) NodeID {
	return NodeID{Name: fmt.Sprintf("node-%d", port), Addr: netip.AddrPortFrom(localhost, port)}
}

// forTest is upstream's ChitchatConfig::for_test(port), minus the server
// fields.
func forTest(port uint16) Config {
	return Config{
		ID:                           id(port),
		ClusterID:                    "default-cluster",
		MarkedForDeletionGracePeriod: 10000 * time.Second,
	}
}

// testRand returns a PCG generator for seed (or for -coreseed when set) and
// logs the seed so that a failure can be replayed.
func testRand(tb testing.TB, seed uint64) *rand.Rand {
	tb.Helper()
	if *coreSeed != 0 {
		seed = *coreSeed
	}
	tb.Logf("seed=%d (replay with -coreseed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// newEngine builds an engine with an RNG seeded with 9, like upstream's unit
// tests, and fails the test on a configuration error.
func newEngine(tb testing.TB, cfg Config, initial ...KeyValue) *Engine {
	tb.Helper()
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(9, 9)), initial)
	if err != nil {
		tb.Fatalf("NewEngine(%v): %v", cfg.ID, err)
	}
	return e
}

// cmpOpts compares protocol values: addresses by value, deltas without their
// cached encoding, nil and empty slices alike.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmpopts.IgnoreUnexported(Delta{}),
	cmpopts.EquateEmpty(),
}

// wire encodes m, checks the datagram is within MaxDatagramSize, decodes it
// and checks the result equals m: every message of the handshake helpers
// goes through the wire format, as in upstream's channel transport.
func wire(tb fataler, m Message) Message {
	tb.Helper()
	b := EncodeMessage(m)
	if _, isSyn := m.(*Syn); !isSyn && len(b) > MaxDatagramSize {
		tb.Fatalf("%v of %d bytes exceeds %d", m.Type(), len(b), MaxDatagramSize)
	}
	got, err := DecodeMessage(b)
	if err != nil {
		tb.Fatalf("DecodeMessage(EncodeMessage(%v)): %v", m.Type(), err)
	}
	want := m
	if p, ok := m.(*Push); ok && p.Range != nil {
		// A range travels as the high 32 bits of its bounds (RingRange):
		// a hand-made one comes back with its low bits set.
		c := *p
		c.Range = &RingRange{After: ringBound(p.Range.After), Upto: ringBound(p.Range.Upto)}
		if p.Range.AfterRecipient {
			// One number: Upto's high 24 bits and the tag; no After.
			c.Range = &RingRange{Upto: upToBound(p.Range.Upto), AfterRecipient: true, Tag: p.Range.Tag}
		}
		want = &c
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		tb.Fatalf("%v round trip mismatch (-want +got):\n%s", m.Type(), diff)
	}
	return got
}

// handshake runs upstream's run_chitchat_handshake: a.Syn → b → SynAck → a
// → Ack → b, which must not answer.
func handshake(tb fataler, now time.Time, a, b *Engine) {
	tb.Helper()
	// Each message arrives from its sender's advertised address, as over
	// a network.
	synAck := b.Step(now, Inbound{From: a.Self().Addr}, wire(tb, a.CreateSyn(now))).Reply
	if synAck == nil {
		tb.Fatalf("%v did not answer the Syn of %v", b.Self(), a.Self())
	}
	ack := a.Step(now, Inbound{From: b.Self().Addr}, wire(tb, synAck)).Reply
	if ack == nil {
		tb.Fatalf("%v did not answer the SynAck of %v", a.Self(), b.Self())
	}
	if reply := b.Step(now, Inbound{From: a.Self().Addr}, wire(tb, ack)).Reply; reply != nil {
		tb.Fatalf("%v answered an Ack with %v", b.Self(), reply.Type())
	}
}

// kvs returns the non-deleted key-values of ns.
func kvs(ns *NodeState) map[string]string {
	m := map[string]string{}
	for k, v := range ns.KeyValues() {
		m[k] = v.Value
	}
	return m
}

// clusterView maps every node an engine knows to its non-deleted key-values.
func clusterView(e *Engine) map[string]map[string]string {
	view := map[string]map[string]string{}
	for _, id := range e.NodeIDs() {
		view[id.String()] = kvs(e.node(id))
	}
	return view
}

// nodesSynced is upstream's assert_nodes_sync as a predicate: every engine
// knows the same nodes with the same non-deleted key-values.
func nodesSynced(engines ...*Engine) bool {
	for _, e := range engines[1:] {
		if !cmp.Equal(clusterView(engines[0]), clusterView(e)) {
			return false
		}
	}
	return true
}

// assertNodesSync is upstream's assert_nodes_sync.
func assertNodesSync(tb testing.TB, engines ...*Engine) {
	tb.Helper()
	want := clusterView(engines[0])
	for _, e := range engines[1:] {
		if diff := cmp.Diff(want, clusterView(e)); diff != "" {
			tb.Fatalf("%v and %v are not in sync (-%v +%v):\n%s", engines[0].Self(), e.Self(), engines[0].Self(), e.Self(), diff)
		}
	}
}

// addNode creates the state of id on e, as a digest mentioning it would.
func addNode(tb testing.TB, e *Engine, id NodeID) *NodeState {
	tb.Helper()
	if _, ok := e.lookup(id); ok {
		tb.Fatalf("%v already knows %v", e.Self(), id)
	}
	ns := e.createNode(id)
	ns.evidenced = true // as if heard from: upstream's states are always advertised
	return ns
}

// setVersion writes key=value at version on ns, like upstream's
// set_with_version: the version must be above the state's max version.
func setVersion(tb testing.TB, ns *NodeState, key, value string, version uint64) {
	tb.Helper()
	if version <= ns.maxVersion {
		tb.Fatalf("setVersion(%q, %d): version not above max version %d", key, version, ns.maxVersion)
	}
	ns.setVersioned(key, VersionedValue{Value: value, Version: version, Status: StatusSet})
}

// kv builds a key-value mutation.
func kv(key, value string, version uint64, status Status) KeyValueMutation {
	return KeyValueMutation{Key: key, Value: value, Version: version, Status: status}
}

// deltaKVs flattens the key-values of a delta as "port:key@version".
func deltaKVs(d Delta) []string {
	var out []string
	for _, nd := range d.Nodes {
		for _, m := range nd.KeyValues {
			out = append(out, fmt.Sprintf("%d:%s@%d", nd.ID.Addr.Port(), m.Key, m.Version))
		}
	}
	return out
}

// isPrefix reports whether p is a prefix of s.
func isPrefix(p, s []string) bool {
	return len(p) <= len(s) && slices.Equal(p, s[:len(p)])
}

// reportHeartbeats records the explicit entries of d, as a digest received
// from a sender that is not the digest's node (no direct evidence).
func (e *Engine) reportHeartbeats(now time.Time, d Digest) {
	e.observeEntries(now, d.normalize(), NodeID{})
}

// deltaFor computes the delta for a peer whose whole view is d (upstream's
// compute_partial_delta_respecting_mtu).
func (e *Engine) deltaFor(now time.Time, d Digest, budget int) Delta {
	return e.computeDelta(now, &peerView{digest: d.normalize()}, budget)
}

// heavy marks a test that takes seconds (tens under the race detector)
// and shares no state with others: it runs in parallel with the other
// heavy tests, after the package's sequential ones, so that tests that
// measure the heap (TestEngineFootprint) never overlap it.
func heavy(t *testing.T) { t.Parallel() }
