package chitchat

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// A joining node that must receive 10 MB of state (1,000 nodes × 100 keys
// of 100 bytes) at a datagram budget of 1,400 bytes gets all of it in the
// stream exchange its first round asks for (issue 13: "live with all of it
// within 5 rounds, over TCP, at MTU 1,400"): one SynAck over a stream
// instead of some 8,000 datagrams. Under the race detector, 100 nodes.
func TestJoinTakesTenMegabytesInOneStream(t *testing.T) {
	nodes, keys := 1000, 100
	if race.Enabled {
		nodes = 100
	}
	r := testRand(t, 13)
	// Random values: zstd must not make the 10 MB small.
	value := func() string {
		var b strings.Builder
		for b.Len() < 100 {
			fmt.Fprintf(&b, "%016x", r.Uint64())
		}
		return b.String()[:100]
	}
	cfg := forTest(1)
	cfg.MaxDatagramSize = 1400
	seed := newEngine(t, cfg)
	now := t0
	// The seed holds every node's keys, and has seen each heartbeat rise
	// (nodes it never saw alive are not advertised).
	var digest Digest
	for i := range nodes {
		id := NodeID{Name: fmt.Sprintf("node-%04d", i), Addr: id(uint16(10000 + i)).Addr}
		nd := NodeDelta{ID: id, MaxVersion: uint64(keys)}
		for k := range keys {
			nd.KeyValues = append(nd.KeyValues, kv(fmt.Sprintf("key-%03d", k), value(), uint64(k+1), StatusSet))
		}
		seed.Process(now, &Ack{Delta: buildDelta([]NodeDelta{nd})})
		digest = append(digest, DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: 1, MaxVersion: uint64(keys)}})
	}
	for hb := uint64(1); hb <= 2; hb++ {
		for i := range digest {
			digest[i].Heartbeat = hb
		}
		seed.Process(now, &Syn{ClusterID: cfg.ClusterID, Digest: digest.normalize()})
	}

	jcfg := forTest(2)
	jcfg.MaxDatagramSize = 1400
	jcfg.Seeds = []string{cfg.ID.Addr.String()}
	joiner := newEngine(t, jcfg)
	now = now.Add(time.Second)
	round := joiner.Tick(now)
	if len(round.Streams) != 1 || round.Streams[0] != cfg.ID.Addr {
		t.Fatalf("the first round asks for streams with %v, want the seed %v", round.Streams, cfg.ID.Addr)
	}
	// The exchange, through the codec with the stream budget.
	stream := func(m Message) Message {
		t.Helper()
		b := EncodeMessage(m)
		got, err := decodeMessage(b, joiner.cfg.MaxStreamMessageSize)
		if err != nil {
			t.Fatalf("%v of %d bytes: %v", m.Type(), len(b), err)
		}
		return got
	}
	start := time.Now()
	synAck := seed.Step(now, Inbound{From: jcfg.ID.Addr, Stream: true}, stream(joiner.CreateStreamSyn(now))).Reply
	if synAck == nil {
		t.Fatal("the seed did not answer the stream Syn")
	}
	size := len(EncodeMessage(synAck))
	joiner.Step(now, Inbound{From: cfg.ID.Addr, Stream: true}, stream(synAck))
	elapsed := time.Since(start)

	held := 0
	for _, ns := range joiner.states {
		if *ns.id != joiner.self {
			held += ns.kvs.len()
		}
	}
	if want := nodes * keys; held != want {
		t.Fatalf("after its first round's stream exchange the joiner holds %d keys, want %d", held, want)
	}
	t.Logf("PERF bulk join: %d nodes × %d keys (%.1f MB of values) in one %.1f MB SynAck over a stream; encode, decode and apply in %v (wall, informative)",
		nodes, keys, float64(nodes*keys*100)/1e6, float64(size)/1e6, elapsed.Round(time.Millisecond))
}
