package chitchat

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
	"unsafe"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// footprintEngine builds the engine of node 0 observing nodes 1..n-1, each
// with keys keys (versions 1..keys), and runs rounds gossip rounds in which
// every node's heartbeat rises, so that every window is past its fill and
// every node is live. With watch, it reads the live-nodes watch after each
// round, as a Server does.
func footprintEngine(tb testing.TB, n, keys, rounds int, watch bool) *Engine {
	tb.Helper()
	cfg := Config{ID: benchID(0), ClusterID: "default-cluster", MarkedForDeletionGracePeriod: 10000 * time.Second}
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(0, 1)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	digest := make(Digest, 0, n-1)
	for i := 1; i < n; i++ {
		kvs := map[string]VersionedValue{}
		for k := range keys {
			kvs[fmt.Sprintf("key_%d", k)] = VersionedValue{Value: fmt.Sprintf("value_%d_%d", i, k), Version: uint64(k + 1)}
		}
		if err := e.ResetNodeStateIfUpdate(t0, benchID(i), kvs, uint64(keys), 0); err != nil {
			tb.Fatal(err)
		}
		digest = append(digest, DigestEntry{ID: benchID(i), NodeDigest: NodeDigest{MaxVersion: uint64(keys)}})
	}
	digest = digest.normalize()
	now := t0
	for r := range rounds {
		now = now.Add(300 * time.Millisecond)
		for i := range digest {
			digest[i].Heartbeat = uint64(r + 1)
		}
		e.reportHeartbeats(now, digest)
		e.Tick(now)
		if watch {
			e.LiveNodesWatch()
		}
	}
	if live := len(e.LiveNodes()); live != n {
		tb.Fatalf("%d nodes live after %d rounds, want %d", live, rounds, n)
	}
	return e
}

// footprintRounds is how many rounds footprintEngine runs: 2,000 (the
// issue's figure), or 30 under the race detector: a node's state is
// fixed-size once its window holds its first intervals, so the sizes
// measured do not change.
func footprintRounds() int {
	if race.Enabled {
		return 30
	}
	return 2000
}

var footprintProfile = flag.String("footprint.memprofile", "", "TestEngineFootprint: write a heap profile, taken while the engine is held, to this file (the last subtest's wins)")

// heapPerObservedNode returns the heap build's result holds, divided by
// nodes.
func heapPerObservedNode(tb testing.TB, nodes int, build func() any) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if *footprintProfile != "" {
		f, err := os.Create(*footprintProfile)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.KeepAlive(v)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(nodes)
}

// TestEngineFootprint pins the heap an Engine holds per observed node at
// 1,000 nodes after 2,000 rounds, without keys and with one key per node,
// with the live-nodes watch read after every round (as a Server does) or
// never. Issue 13 asks for 400 bytes. Measured here (a test binary running
// this test alone): 361 unread, 363 read, 519 with one key, since the
// watch's copies double as the list a publication is compared with and
// the detector keeps no pointer back to the states; 336, 393 and 549
// before that (a 16-byte live list beside the copies, 8 bytes of owner);
// 358, 456 and 596 with 96-byte copies and 192-byte allocations; 382, 481
// and 621 with addresses in the target sets; before the compact key store
// and the small copies: 376, 576-582 and 1,292; before issue 13: 1,156
// without keys, 2,462 with one. Run after the rest of the package, the
// same engine measures up to ~40 bytes more (heap left by earlier tests).
//
// Without keys: the NodeState, its identity and its nodeLocal, one
// allocation (176), the detector's Node (104), the watch's copy (48 bytes:
// the exported fields only, nodeLocal left out, the identity shared; all
// of a publication's copies in one allocation), states and byRef (16), the
// live target set (8), the rest spread from fixed costs. (A map from
// NodeID to state beside states cost about 145 more; lookups are binary
// searches in states now.) A read watch adds a pointer per live node; the
// key-value store is shared, copy-on-write. A key adds the store (40
// bytes, in a 48-byte class), its entry (72, in an 80-byte slice) and the
// key and value strings (kvstore.go; Go's smallest map, which held them
// before, cost about 700).
//
// The bounds leave room for the heap the rest of the package leaves (392,
// 400 and 556 measured after it): 430 without keys, where the 400
// is met by the figures above and by chitchat-bench -sim, in a process
// holding nothing else; 600 with one key.
func TestEngineFootprint(t *testing.T) {
	n := 1000
	if race.Enabled {
		n = 200
	}
	rounds := footprintRounds()
	tests := []struct {
		name  string
		keys  int
		watch bool
		bound float64
	}{
		{"no keys, watch unread", 0, false, 430},
		{"no keys, watch read", 0, true, 430},
		{"one key, watch read", 1, true, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			per := heapPerObservedNode(t, n, func() any { return footprintEngine(t, n, tt.keys, rounds, tt.watch) })
			t.Logf("%.0f heap bytes per observed node at N=%d after %d rounds (%d keys per node)", per, n, rounds, tt.keys)
			// Under the race detector the engine is small (N=200, 30
			// rounds) and the detector's own allocations blur the figure:
			// it is logged, not checked.
			if per > tt.bound && !race.Enabled {
				t.Errorf("%.0f heap bytes per observed node, want <= %.0f", per, tt.bound)
			}
		})
	}
}

// BenchmarkTick measures a gossip round of an engine observing 1,000 live
// nodes without keys (heartbeats fed between rounds, outside the timing).
func BenchmarkTick(b *testing.B) {
	const n = 1000
	const warm = 30
	e := footprintEngine(b, n, 0, warm, false)
	var digest Digest
	for _, ns := range e.states[1:] {
		digest = append(digest, DigestEntry{ID: *ns.id})
	}
	now := t0.Add(warm * 300 * time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		now = now.Add(300 * time.Millisecond)
		for j := range digest {
			digest[j].Heartbeat = uint64(warm + 1 + i)
		}
		e.reportHeartbeats(now, digest)
		b.StartTimer()
		e.Tick(now)
	}
	b.StopTimer()
	if live := len(e.LiveNodes()); live != n {
		b.Fatalf("%d nodes live, want %d", live, n)
	}
}

// The sizes TestEngineFootprint's figures rest on: a NodeState copy (what
// the live-nodes watch holds per live node) is 48 bytes, the engine's
// allocation per node (identity, state, bookkeeping) fills the 176-byte
// size class, and a node's key store (only nodes with keys have one) is 40
// bytes with its fingerprint. A field added to either breaks this test on
// purpose: it is paid once per node per observer (issue 13).
func TestNodeStateSizes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"NodeState", unsafe.Sizeof(NodeState{}), 48},
		{"nodeLocal", unsafe.Sizeof(nodeLocal{}), 72},
		{"nodeAlloc", unsafe.Sizeof(nodeAlloc{}), 176},
		{"kvStore", unsafe.Sizeof(kvStore{}), 40},
	} {
		if tc.got != tc.want {
			t.Errorf("unsafe.Sizeof(%s) = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}
