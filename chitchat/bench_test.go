package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// Benchmarks of the hot paths for clusters of 100 and 1,000 nodes × 10 keys
// (upstream's perf-test sizes: ids "node_i" on 127.0.0.1:10000+i). Setup builds the
// engines by applying states directly and stays out of the timed loop.
//
//	go test -run=^$ -bench=. -benchmem ./chitchat/

var benchSizes = []int{100, 1000}

func benchID(i int) NodeID {
	return NodeID{Name: fmt.Sprintf("node_%d", i), Addr: netip.AddrPortFrom(localhost, uint16(10000+i))}
}

// benchEngine returns the engine of node 0 knowing nodes 1..n-1 with ten
// keys each (versions 1..10) and a heartbeat, plus its own ten keys.
func benchEngine(b testing.TB, self, n int) *Engine {
	b.Helper()
	cfg := Config{ID: benchID(self), ClusterID: "default-cluster", MarkedForDeletionGracePeriod: 10000 * time.Second}
	var initial []KeyValue
	for k := range 10 {
		initial = append(initial, KeyValue{fmt.Sprintf("key_%d", k), fmt.Sprintf("value_%d_%d", self, k)})
	}
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(uint64(self), 1)), initial)
	if err != nil {
		b.Fatal(err)
	}
	var digest Digest
	for i := range n {
		if i == self {
			continue
		}
		kvs := map[string]VersionedValue{}
		for k := range 10 {
			kvs[fmt.Sprintf("key_%d", k)] = VersionedValue{Value: fmt.Sprintf("value_%d_%d", i, k), Version: uint64(k + 1)}
		}
		if err := e.ResetNodeStateIfUpdate(t0, benchID(i), kvs, 10, 0); err != nil {
			b.Fatal(err)
		}
		digest = append(digest, DigestEntry{ID: benchID(i), NodeDigest: NodeDigest{Heartbeat: 100}})
	}
	e.reportHeartbeats(t0, digest.normalize())
	return e
}

// laggingDigest is e's whole view, explicit, with every tenth node one
// version behind. (A v1 Syn's digest is partial: its own entry, spot
// entries and bucket summaries.)
func laggingDigest(e *Engine) Digest {
	d := e.digest(t0)
	for i := range d {
		if i%10 == 0 && d[i].MaxVersion > 0 {
			d[i].MaxVersion--
		}
	}
	return d
}

func BenchmarkCreateSyn(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			e := benchEngine(b, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				_ = e.CreateSyn(t0)
			}
		})
	}
}

func BenchmarkComputeDelta(b *testing.B) {
	for _, n := range benchSizes {
		for _, peer := range []string{"empty", "nearly-synced"} {
			b.Run(fmt.Sprintf("nodes=%d/digest=%s", n, peer), func(b *testing.B) {
				e := benchEngine(b, 0, n)
				var digest Digest
				if peer == "nearly-synced" {
					digest = laggingDigest(e)
				}
				budget := MaxDatagramSize - envelopeSize - 1
				b.ReportAllocs()
				for b.Loop() {
					_ = e.deltaFor(t0, digest, budget)
				}
			})
		}
	}
}

// benchMessages returns a Syn, the SynAck answering an empty digest (full
// budget of news) and the Ack answering that SynAck's digest.
func benchMessages(b *testing.B, n int) map[string]Message {
	b.Helper()
	e := benchEngine(b, 0, n)
	syn := e.CreateSyn(t0)
	synAck := e.Process(t0, &Syn{ClusterID: "default-cluster"})
	lonely, err := NewEngine(Config{ID: benchID(n), ClusterID: "default-cluster"}, rand.New(rand.NewPCG(1, 1)), nil)
	if err != nil {
		b.Fatal(err)
	}
	ack := e.Process(t0, lonely.Process(t0, e.CreateSyn(t0)))
	return map[string]Message{"Syn": syn, "SynAck": synAck, "Ack": ack}
}

func BenchmarkEncodeMessage(b *testing.B) {
	for _, n := range benchSizes {
		msgs := benchMessages(b, n)
		for _, kind := range []string{"Syn", "SynAck", "Ack"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", n, kind), func(b *testing.B) {
				m := msgs[kind]
				buf := AppendMessage(nil, m)
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				for b.Loop() {
					buf = AppendMessage(buf[:0], m)
				}
			})
		}
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	for _, n := range benchSizes {
		msgs := benchMessages(b, n)
		for _, kind := range []string{"Syn", "SynAck", "Ack"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", n, kind), func(b *testing.B) {
				buf := EncodeMessage(msgs[kind])
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := DecodeMessage(buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHandshake runs a full Syn → SynAck → Ack exchange (encode,
// decode, process at both ends) between two engines that know the whole
// cluster, with one new key-value per handshake: the steady state of a busy
// cluster.
func BenchmarkHandshake(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			a, c := benchEngine(b, 0, n), benchEngine(b, 1, n)
			now := t0
			step := func(i int) {
				_ = a.Set("counter", fmt.Sprint(i))
				m1, _ := DecodeMessage(EncodeMessage(a.CreateSyn(now)))
				m2, _ := DecodeMessage(EncodeMessage(c.Process(now, m1)))
				m3, _ := DecodeMessage(EncodeMessage(a.Process(now, m2)))
				c.Process(now, m3)
			}
			for i := range 5 { // reach the steady state
				step(-i)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				step(i)
			}
			if !nodesSynced(a, c) {
				b.Fatal("engines not in sync after the benchmark")
			}
		})
	}
}
