package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// TestFloodMemoryBounded floods an engine with default limits with digests
// naming a million invented nodes (500 datagrams of 2,000 entries, each
// entry also with a huge version on every tenth node), and checks that the
// heap stays bounded by Limits.MaxNodes, not by the flood.
func TestFloodMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a million node ids")
	}
	cfg := Config{ID: NodeID{Name: "victim", Addr: netip.MustParseAddrPort("127.0.0.1:1")}, ClusterID: "c"}
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(1, 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heap()
	now := time.Unix(1_700_000_000, 0)
	var peak uint64
	// Under the race detector the flood is a tenth as long: 50,000 invented
	// ids still overrun MaxNodes five times over.
	batches, perBatch := 500, 2000
	if race.Enabled {
		batches = 25
	}
	for b := range batches {
		d := make(Digest, 0, perBatch)
		for i := range perBatch {
			n := b*perBatch + i
			nd := NodeDigest{Heartbeat: uint64(1 + b%3)}
			if n%10 == 0 {
				nd.MaxVersion = 1 << 63
			}
			d = append(d, DigestEntry{ID: NodeID{Name: fmt.Sprintf("invented-%07d", n), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), 7000)}, NodeDigest: nd})
		}
		// Each batch is a valid datagram's worth: encode and decode it, as a
		// receiver would.
		m, err := DecodeMessage(EncodeMessage(&Syn{ClusterID: "c", Digest: d.normalize()}))
		if err != nil {
			t.Fatal(err)
		}
		if len(EncodeMessage(m)) > MaxDatagramSize {
			t.Fatalf("batch %d does not fit a datagram", b)
		}
		e.Process(now, m)
		if b%25 == 24 {
			now = now.Add(time.Second)
			e.Tick(now)
			peak = max(peak, heap())
		}
	}
	if len(e.states) > e.limits.MaxNodes {
		t.Fatalf("holds %d nodes, limit %d", len(e.states), e.limits.MaxNodes)
	}
	grown := int64(peak) - int64(base)
	t.Logf("PERF flood: %d invented ids in %d datagrams; holds %d nodes (limit %d), evicted %d, refused %d; heap %d KB before, peak %d KB (+%d KB, %.0f B per held node)",
		batches*perBatch, batches, len(e.states), e.limits.MaxNodes, e.stats.NodesEvicted, e.stats.NodesRefused,
		base>>10, peak>>10, grown>>10, float64(grown)/float64(len(e.states)))
	if grown > 64<<20 {
		t.Errorf("heap grew by %d MB under the flood, want < 64 MB", grown>>20)
	}
	if err := e.Set("still", "writable"); err != nil {
		t.Fatal(err)
	}
}
