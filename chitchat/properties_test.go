package chitchat

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// Property tests of the protocol (docs/PROTOCOL.md §4, §5): engines exchanging
// datagrams over a network that drops, duplicates and reorders converge;
// every reply fits its datagram budget; (LastGCVersion, MaxVersion) never
// decreases; the codec round-trips any message.

// datagram is one message in flight between two engines of a simNet.
type datagram struct {
	from, to int
	b        []byte
}

// simNet is a hand-rolled network of engines driven by rapid: which datagram
// is delivered, dropped or duplicated, when time advances and what each
// engine writes are all draws, so rapid can shrink a failure to a minimal
// schedule.
type simNet struct {
	t       fataler
	engines []*Engine
	queue   []datagram
	now     time.Time
	mtu     int
	grace   time.Duration
	// mono is the last (LastGCVersion, MaxVersion) seen for each node on
	// each engine.
	mono []map[NodeID][2]uint64
	// push: messages go through Step from their sender's address, and the
	// pushes it, Tick and Flush return are queued like any datagram (to
	// be delivered, dropped, duplicated or reordered). Without it pushes
	// are never sent.
	push   bool
	pushed int // pushes queued
}

func newSimNet(t fataler, n, mtu int, seed uint64) *simNet {
	s := &simNet{t: t, now: t0, mtu: mtu, grace: 10 * time.Second}
	for i := range n {
		cfg := Config{
			ID:                           NodeID{Name: fmt.Sprintf("n%d", i), Generation: 7, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7000)},
			ClusterID:                    "prop",
			MarkedForDeletionGracePeriod: s.grace,
			MaxDatagramSize:              s.mtu,
		}
		// Nodes are never garbage collected here: only tombstones are.
		cfg.FailureDetector.DeadNodeGracePeriod = 100000 * time.Hour
		e, err := NewEngine(cfg, rand.New(rand.NewPCG(seed, uint64(i))), nil)
		if err != nil {
			t.Fatalf("NewEngine: %v", err)
		}
		s.engines = append(s.engines, e)
		s.mono = append(s.mono, map[NodeID][2]uint64{})
	}
	return s
}

// checkMonotonic is property (3): on every engine, every node's
// (LastGCVersion, MaxVersion) is at least what it was at the last check.
func (s *simNet) checkMonotonic(i int, what string) {
	e := s.engines[i]
	for _, ns := range e.states {
		id := ns.id
		m := ns.monotonic()
		if prev, ok := s.mono[i][*id]; ok && lessMonotonic(m, prev) {
			s.t.Fatalf("%s on %v: (gc, max) of %v went from %v to %v", what, e.Self(), id, prev, m)
		}
		s.mono[i][*id] = m
	}
}

// send encodes m from engine i to engine j, checking property (2): SynAcks
// and Acks fit the datagram budget.
func (s *simNet) send(i, j int, m Message) {
	b := EncodeMessage(m)
	if _, isSyn := m.(*Syn); !isSyn && len(b) > s.mtu {
		s.t.Fatalf("%v from %v is %d bytes, above the %d-byte budget", m.Type(), s.engines[i].Self(), len(b), s.mtu)
	}
	s.queue = append(s.queue, datagram{from: i, to: j, b: b})
}

// deliver hands datagram k to its destination and queues the reply.
func (s *simNet) deliver(k int) {
	d := s.queue[k]
	s.queue = slices.Delete(s.queue, k, k+1)
	m, err := DecodeMessage(d.b)
	if err != nil {
		s.t.Fatalf("decoding a datagram of %d bytes: %v", len(d.b), err)
	}
	var reply Message
	if s.push {
		out := s.engines[d.to].Step(s.now, Inbound{From: s.engines[d.from].Self().Addr, Size: len(d.b)}, m)
		reply = out.Reply
		s.queuePushes(d.to, out.Pushes)
	} else {
		reply = s.engines[d.to].Process(s.now, m)
	}
	s.checkMonotonic(d.to, fmt.Sprintf("Process(%v)", m.Type()))
	if reply != nil {
		s.send(d.to, d.from, reply)
	}
}

// queuePushes queues pushes sent by engine i, when pushes are on.
func (s *simNet) queuePushes(i int, pushes []Envelope) {
	if !s.push {
		return
	}
	for _, p := range pushes {
		for j, e := range s.engines {
			if e.Self().Addr == p.To && j != i {
				s.send(i, j, p.Msg)
				s.pushed++
			}
		}
	}
}

// wrote flushes engine i's pushes after a write, as Server does.
func (s *simNet) wrote(i int) { s.queuePushes(i, s.engines[i].Flush(s.now)) }

// stream runs a stream exchange from engine i with engine j, cut after n
// of its three messages.
func (s *simNet) stream(i, j, n int) {
	var m Message = s.engines[i].CreateStreamSyn(s.now)
	sides := [2]int{i, j}
	for k := 0; m != nil && k < n; k++ {
		recv := sides[(k+1)%2]
		m = s.engines[recv].Step(s.now, Inbound{Stream: true}, wire(s.t, m)).Reply
		s.checkMonotonic(recv, "stream")
	}
}

// tick runs a gossip round on engine i and sends its Syn to the engines
// behind the targets.
func (s *simNet) tick(i int) {
	r := s.engines[i].Tick(s.now)
	s.checkMonotonic(i, "Tick")
	s.queuePushes(i, r.Pushes)
	for _, addr := range r.Targets {
		for j, e := range s.engines {
			if e.Self().Addr == addr {
				s.send(i, j, r.Syn)
			}
		}
	}
}

// step performs one random action.
func (s *simNet) step(t *rapid.T) {
	n := len(s.engines)
	pick := func(label string) int { return rapid.IntRange(0, n-1).Draw(t, label) }
	key := func() string { return fmt.Sprintf("k%d", rapid.IntRange(0, 6).Draw(t, "key")) }
	value := func() string { return rapid.StringN(0, 24, -1).Draw(t, "value") }
	actions := []string{"set", "set", "set-ttl", "delete", "delete-after-ttl", "syn", "syn", "tick", "advance", "gc", "stream"}
	if len(s.queue) > 0 {
		actions = append(actions, "deliver", "deliver", "deliver", "deliver", "drop", "duplicate")
	}
	switch a := rapid.SampledFrom(actions).Draw(t, "action"); a {
	case "set":
		i := pick("node")
		if err := s.engines[i].Set(key(), value()); err != nil {
			t.Fatalf("Set: %v", err)
		}
		s.wrote(i)
	case "set-ttl":
		i := pick("node")
		if err := s.engines[i].SetWithTTL(s.now, key(), value()); err != nil {
			t.Fatalf("SetWithTTL: %v", err)
		}
		s.wrote(i)
	case "delete":
		i := pick("node")
		s.engines[i].Delete(s.now, key())
		s.wrote(i)
	case "delete-after-ttl":
		i := pick("node")
		s.engines[i].DeleteAfterTTL(s.now, key())
		s.wrote(i)
	case "syn":
		i, j := pick("from"), pick("to")
		if i != j {
			s.send(i, j, s.engines[i].CreateSyn(s.now))
		}
	case "tick":
		s.tick(pick("node"))
	case "stream":
		// A bulk exchange interrupted after any of its messages.
		i, j := pick("from"), pick("to")
		if i != j {
			s.stream(i, j, rapid.IntRange(0, 3).Draw(t, "stream messages delivered"))
		}
	case "advance":
		s.now = s.now.Add(time.Duration(rapid.IntRange(0, 30).Draw(t, "seconds")) * time.Second)
	case "gc":
		i := pick("node")
		s.engines[i].GCKeys(s.now)
		s.checkMonotonic(i, "GCKeys")
	case "deliver":
		s.deliver(rapid.IntRange(0, len(s.queue)-1).Draw(t, "datagram"))
	case "drop":
		k := rapid.IntRange(0, len(s.queue)-1).Draw(t, "datagram")
		s.queue = slices.Delete(s.queue, k, k+1)
	case "duplicate":
		s.queue = append(s.queue, s.queue[rapid.IntRange(0, len(s.queue)-1).Draw(t, "datagram")])
	}
}

// versions maps every node an engine knows to its max version.
func versions(e *Engine) map[NodeID]uint64 {
	m := map[NodeID]uint64{}
	for _, ns := range e.states {
		m[*ns.id] = ns.maxVersion
	}
	return m
}

// antiEntropy runs reliable handshakes between every ordered pair of engines
// until every engine knows every node at the same max version (what digests
// compare), and returns the number of rounds.
func (s *simNet) antiEntropy(phase string) int {
	const maxRounds = 200
	for round := 1; round <= maxRounds; round++ {
		for i, a := range s.engines {
			for j, b := range s.engines {
				if i != j {
					handshake(s.t, s.now, a, b)
					s.checkMonotonic(i, phase)
					s.checkMonotonic(j, phase)
				}
			}
		}
		same := true
		for _, e := range s.engines[1:] {
			same = same && maps.Equal(versions(s.engines[0]), versions(e)) && len(e.states) == len(s.engines)
		}
		if same {
			return round
		}
	}
	s.t.Fatalf("%s: no agreement on versions after %d rounds: %v", phase, maxRounds, versions(s.engines[0]))
	return 0
}

// converge is property (1): after the random schedule, reliable gossip
// brings every engine to the owners' states. First the queue drains, then
// handshakes until versions agree, then, once every tombstone and TTL'd key
// has expired everywhere, again: every engine then holds, for every node,
// exactly the owner's key-values.
func (s *simNet) converge() {
	for len(s.queue) > 0 {
		s.deliver(0)
	}
	s.antiEntropy("anti-entropy")
	s.now = s.now.Add(s.grace + time.Second)
	for i, e := range s.engines {
		e.GCKeys(s.now)
		s.checkMonotonic(i, "final GCKeys")
	}
	s.antiEntropy("anti-entropy after gc")
	for _, owner := range s.engines {
		want := kvs(owner.selfState())
		for _, e := range s.engines {
			ns, ok := e.lookup(owner.Self())
			if !ok {
				s.t.Fatalf("%v does not know %v", e.Self(), owner.Self())
			}
			if diff := cmp.Diff(want, kvs(ns)); diff != "" {
				s.t.Fatalf("%v's view of %v differs from the owner's (-owner +view):\n%s", e.Self(), owner.Self(), diff)
			}
			for k, v := range ns.AllKeyValues() {
				if v.Status != StatusSet {
					s.t.Fatalf("%v still holds %q of %v with status %v after gc", e.Self(), k, owner.Self(), v.Status)
				}
			}
		}
	}
}

func runConvergence(t *rapid.T, n int) {
	mtu := rapid.OneOf(rapid.SampledFrom([]int{MinDatagramSize, 700, 1400, MaxDatagramSize}), rapid.IntRange(MinDatagramSize, 4096)).Draw(t, "mtu")
	s := newSimNet(t, n, mtu, rapid.Uint64().Draw(t, "seed"))
	// Partial digests with a handful of engines: one node per bucket and
	// Syns that cover one bucket or a few make every exchange discuss a
	// part of the ring only.
	tune := tuning{
		bucketTarget: rapid.SampledFrom([]int{0, 1}).Draw(t, "bucket target"),
		maxBuckets:   uint32(rapid.IntRange(0, 3).Draw(t, "max buckets per syn")),
	}
	for _, e := range s.engines {
		e.tune = tune
	}
	steps := rapid.IntRange(0, 200).Draw(t, "steps")
	for range steps {
		s.step(t)
	}
	s.converge()
}

// Push on (issue 14): any interleaving of pushes (from writes, rounds and
// forwards), rounds, drops, duplicates and reordering converges to the
// owners' states, as with push off: push is an optimisation that can be
// lost, duplicated or reordered without harm.
func TestPropConvergesWithPush(t *testing.T) {
	pushed := 0
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "engines")
		mtu := rapid.SampledFrom([]int{MinDatagramSize, 1400, MaxDatagramSize}).Draw(t, "mtu")
		s := newSimNet(t, n, mtu, rapid.Uint64().Draw(t, "seed"))
		s.push = true
		// Everyone live first, so that pushes have somewhere to go.
		s.antiEntropy("warm-up")
		for i := range s.engines {
			s.tick(i)
		}
		for range rapid.IntRange(0, 200).Draw(t, "steps") {
			s.step(t)
		}
		pushed += s.pushed
		s.converge()
	})
	t.Logf("%d pushes queued", pushed)
	if pushed == 0 {
		t.Error("no schedule sent a push: the property tests nothing")
	}
}

func TestPropTwoEnginesConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runConvergence(t, 2) })
}

func TestPropThreeEnginesConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runConvergence(t, 3) })
}

// Protocol v1: three to five engines with partial digests (one bucket per
// node, Syns covering part of the ring) at any datagram size from 1,200
// bytes, under drop, duplication and reordering.
func TestPropPartialDigestsConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runConvergence(t, rapid.IntRange(3, 5).Draw(t, "engines")) })
}

// The schedules must exercise the reset path (docs/PROTOCOL.md §4.3), not only plain
// deltas. A seeded schedule biased towards deletes, elapsed time and lost
// Acks makes peers miss collected tombstones; some node deltas are then
// applied after a reset, and the engines still converge.
func TestPropConvergenceExercisesResets(t *testing.T) {
	r := testRand(t, 5)
	resets := 0
	for range 40 {
		s := newSimNet(t, 3, MinDatagramSize, r.Uint64())
		for range 300 {
			a, b := r.IntN(3), r.IntN(3)
			switch r.IntN(6) {
			case 0, 1:
				if err := s.engines[a].Set(fmt.Sprintf("k%d", r.IntN(8)), fmt.Sprint(r.Uint32())); err != nil {
					t.Fatal(err)
				}
			case 2:
				s.engines[a].Delete(s.now, fmt.Sprintf("k%d", r.IntN(8)))
			case 3:
				s.now = s.now.Add(time.Duration(r.IntN(20)) * time.Second)
				s.engines[a].GCKeys(s.now)
				s.checkMonotonic(a, "GCKeys")
			default:
				// A handshake whose Ack is lost half of the time.
				if a == b {
					continue
				}
				s.send(a, b, s.engines[a].CreateSyn(s.now))
				s.deliver(len(s.queue) - 1) // Syn, queues the SynAck
				s.deliver(len(s.queue) - 1) // SynAck, queues the Ack
				if r.IntN(2) == 0 {
					s.deliver(len(s.queue) - 1)
				} else {
					s.queue = s.queue[:len(s.queue)-1]
				}
			}
		}
		s.converge()
		for _, e := range s.engines {
			resets += int(e.Stats().NodeResets)
		}
	}
	t.Logf("%d node resets over 40 schedules", resets)
	if resets == 0 {
		t.Error("no schedule exercised the reset path")
	}
}

// genAddr draws an IPv4 or IPv6 address, normalized as the decoder returns
// it (an IPv4-mapped IPv6 address comes back as IPv4).
func genAddr() *rapid.Generator[netip.AddrPort] {
	return rapid.Custom(func(t *rapid.T) netip.AddrPort {
		port := rapid.Uint16().Draw(t, "port")
		if rapid.Bool().Draw(t, "v6") {
			b := rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "ip6")
			return normalizeAddr(netip.AddrPortFrom(netip.AddrFrom16([16]byte(b)), port))
		}
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "ip4")
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), port)
	})
}

func genNodeID() *rapid.Generator[NodeID] {
	return rapid.Custom(func(t *rapid.T) NodeID {
		return NodeID{
			Name:       rapid.StringN(0, 40, -1).Draw(t, "name"),
			Generation: rapid.Uint64().Draw(t, "generation"),
			Addr:       genAddr().Draw(t, "addr"),
		}
	})
}

func genDigest() *rapid.Generator[Digest] {
	return rapid.Custom(func(t *rapid.T) Digest {
		var d Digest
		for _, id := range rapid.SliceOfN(genNodeID(), 0, 20).Draw(t, "ids") {
			d = append(d, DigestEntry{ID: id, NodeDigest: NodeDigest{
				Heartbeat:     rapid.Uint64().Draw(t, "heartbeat"),
				LastGCVersion: rapid.Uint64().Draw(t, "gc"),
				MaxVersion:    rapid.Uint64().Draw(t, "max"),
			}})
		}
		return d.normalize()
	})
}

// genDelta draws a well-formed delta: distinct nodes, key-values in strictly
// increasing versions from 1, MaxVersion the last version (or any value
// without key-values).
func genDelta() *rapid.Generator[Delta] {
	return rapid.Custom(func(t *rapid.T) Delta {
		ids := rapid.SliceOfNDistinct(genNodeID(), 0, 8, func(id NodeID) NodeID { return id }).Draw(t, "ids")
		var d Delta
		for _, id := range ids {
			nd := NodeDelta{ID: id, LastGCVersion: rapid.Uint64().Draw(t, "gc"), FromVersionExcluded: rapid.Uint64().Draw(t, "from")}
			n := rapid.IntRange(0, 10).Draw(t, "kvs")
			for range n {
				v := nd.MaxVersion + rapid.Uint64Range(1, 1<<40).Draw(t, "step")
				nd.KeyValues = append(nd.KeyValues, kv(rapid.StringN(0, 30, -1).Draw(t, "key"), rapid.StringN(0, 300, -1).Draw(t, "value"), v,
					Status(rapid.IntRange(0, 2).Draw(t, "status"))))
				nd.MaxVersion = v
			}
			if n == 0 {
				nd.MaxVersion = rapid.Uint64().Draw(t, "max")
			}
			d.Nodes = append(d.Nodes, nd)
		}
		return d
	})
}

func genMessage() *rapid.Generator[Message] {
	return rapid.OneOf(
		rapid.Custom(func(t *rapid.T) Message {
			return &Syn{ClusterID: rapid.StringN(0, 40, -1).Draw(t, "cluster"), Digest: genDigest().Draw(t, "digest")}
		}),
		rapid.Custom(func(t *rapid.T) Message {
			return &SynAck{Digest: genDigest().Draw(t, "digest"), Delta: genDelta().Draw(t, "delta")}
		}),
		rapid.Custom(func(t *rapid.T) Message { return &Ack{Delta: genDelta().Draw(t, "delta")} }),
		rapid.Just[Message](&BadCluster{}),
	)
}

// Property (4): DecodeMessage(EncodeMessage(m)) == m; the writer records the
// delta it was fed and encodes the same op stream as the hand-written ops of
// codec_test.go (the encoder and decoder cannot drift from the format
// together); and a delta encodes the same whether the budgeted writer built
// it or not.
func TestPropMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "message")
		b := EncodeMessage(m)
		if n := EncodedSize(m); n != len(b) {
			t.Fatalf("EncodedSize = %d, encoded %d bytes", n, len(b))
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("DecodeMessage: %v", err)
		}
		if diff := cmp.Diff(m, got, cmpOpts); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
		var d *Delta
		switch m := m.(type) {
		case *SynAck:
			d = &m.Delta
		case *Ack:
			d = &m.Delta
		}
		if d != nil {
			w := newDeltaWriter(1 << 30)
			for _, nd := range d.Nodes {
				ok := tryNode(w, nd.ID, nd.LastGCVersion, nd.FromVersionExcluded)
				for _, m := range nd.KeyValues {
					ok = ok && tryKV(w, m)
				}
				if len(nd.KeyValues) == 0 && nd.MaxVersion > 0 {
					ok = ok && tryMax(w, nd.MaxVersion)
				}
				if !ok {
					t.Fatalf("node %v does not fit a 1 GiB budget", nd.ID)
				}
			}
			built := w.finish()
			if !equalDeltas(&built, d) || string(built.enc) != string(appendDelta(nil, d)) {
				t.Fatalf("writer-built delta differs from the hand-built one")
			}
			if _, stream := deltaStream(t, built.enc); !bytes.Equal(stream, opStream(d)) {
				t.Fatalf("op stream differs from the reference ops:\n got % x\nwant % x", stream, opStream(d))
			}
		}
	})
}

// TestPropSeekMatchesWalk checks Engine.seek, the galloping search
// observeEntries uses, against the walk it replaced: from any start, the
// first state at or after id, and whether it is id's.
func TestPropSeekMatchesWalk(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		names := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-e]{1,3}`), 0, 40, rapid.ID[string]).Draw(t, "names")
		var e Engine
		for _, name := range names {
			gen := uint64(rapid.IntRange(0, 2).Draw(t, "gen"))
			e.states = append(e.states, &NodeState{id: &NodeID{Name: name, Generation: gen}})
		}
		slices.SortFunc(e.states, func(a, b *NodeState) int { return a.id.Compare(*b.id) })
		e.states = slices.CompactFunc(e.states, func(a, b *NodeState) bool { return *a.id == *b.id })
		id := NodeID{Name: rapid.StringMatching(`[a-e]{1,3}`).Draw(t, "id"), Generation: uint64(rapid.IntRange(0, 2).Draw(t, "idgen"))}
		from := rapid.IntRange(0, len(e.states)).Draw(t, "from")
		// The walk, as observeEntries had it.
		want, wantOrder := from, 1
		for ; want < len(e.states); want++ {
			if wantOrder = e.states[want].id.Compare(id); wantOrder >= 0 {
				break
			}
		}
		if want == len(e.states) {
			wantOrder = 1
		}
		got, held := e.seek(from, id)
		if got != want || held != (wantOrder == 0) {
			t.Fatalf("seek(%d, %v) = %d, %v; the walk gives %d, order %d (states %v)", from, id, got, held, want, wantOrder, names)
		}
	})
}
