package chitchat

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// Upstream's block-stream (serialize.rs) and MTU-bounded delta serializer
// (delta.rs) tests, ported to the deltaWriter: ops are msgpack arrays, blocks
// of 16 KiB are zstd-compressed when that helps, and the writer's bound
// assumes the block being filled stays raw.

// tenSentences are upstream's test sentences (T7, T8).
var tenSentences = []string{
	"I'm happy.",
	"She exercises every morning.",
	"His dog barks loudly.",
	"My school starts at 8:00.",
	"We always eat dinner together.",
	"They take the bus to work.",
	"He doesn't like vegetables.",
	"I don't want anything to drink.",
	"hello Happy tax payer",
	"do you like tea?",
}

// valuesDelta writes values as key-values "" = value of one node, versions
// 1..n, with no budget.
func valuesDelta(values []string) Delta {
	w := newDeltaWriter(1 << 30)
	w.addNode(id(1), 0, 0)
	for i, v := range values {
		w.addKV(kv("", v, uint64(i+1), StatusSet))
	}
	return w.finish()
}

// deltaValues returns the values of the key-values of a one-node delta.
func deltaValues(d Delta) []string {
	var out []string
	for _, nd := range d.Nodes {
		for _, m := range nd.KeyValues {
			out = append(out, m.Value)
		}
	}
	return out
}

// blockKinds returns the kinds of the blocks of an encoded delta.
func blockKinds(tb fataler, enc []byte) []uint64 {
	tb.Helper()
	kinds, _ := deltaStream(tb, enc)
	return kinds
}

// deltaStream splits an encoded delta into the kinds of its blocks and the
// op stream they carry, decompressed, without the production decoder.
func deltaStream(tb fataler, enc []byte) (kinds []uint64, stream []byte) {
	tb.Helper()
	r := &reader{b: enc}
	if r.binNext() {
		data, err := r.bin("delta")
		if err != nil || r.remaining() != 0 {
			tb.Fatalf("bare delta: %v, %d bytes after it", err, r.remaining())
		}
		return []uint64{blockRaw}, data
	}
	n, err := r.arrayHeader("delta", 1)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	for range n {
		if err := r.fixArray("block", 2); err != nil {
			tb.Fatalf("%v", err)
		}
		k, err := r.uint("kind")
		if err != nil {
			tb.Fatalf("%v", err)
		}
		data, err := r.bin("data")
		if err != nil {
			tb.Fatalf("%v", err)
		}
		if k == blockZstd {
			if data, err = zstdDecoder().DecodeAll(data, make([]byte, 0, blockThreshold)); err != nil {
				tb.Fatalf("block %d: %v", len(kinds), err)
			}
		}
		kinds = append(kinds, k)
		stream = append(stream, data...)
	}
	if r.remaining() != 0 {
		tb.Fatalf("%d bytes after the delta", r.remaining())
	}
	return kinds, stream
}

// opStream is the reference op stream of d, built from the hand-written ops
// of codec_test.go: a node with no key-value carries its max version (if
// any) in a max op.
func opStream(d *Delta) []byte {
	var ops [][]byte
	for _, nd := range d.Nodes {
		ops = append(ops, nodeOp(nd.ID, nd.LastGCVersion, nd.FromVersionExcluded))
		for _, m := range nd.KeyValues {
			ops = append(ops, kvOp(m.Key, m.Value, m.Version, m.Status))
		}
		if len(nd.KeyValues) == 0 && nd.MaxVersion > 0 {
			ops = append(ops, maxOp(nd.MaxVersion))
		}
	}
	return slices.Concat(ops...)
}

func alnum(r *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// randomBytes returns incompressible bytes (not UTF-8: for size tests only).
func randomBytes(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// T6 test_serialize_block_type
func TestT6_BlockKinds(t *testing.T) {
	// Upstream has three block tags (0 ends the stream); msgpack arrays
	// carry their length, so only two kinds remain: 1 (zstd) and 2 (raw).
	stream := slices.Concat(nodeOp(id(1), 0, 0), kvOp("k", strings.Repeat("v", 200), 1, StatusSet))
	compressed := zstdEncoder().EncodeAll(stream, nil)
	var valid []int
	for kind := range 256 {
		data := stream
		if kind == blockZstd {
			data = compressed
		}
		m, err := DecodeMessage(ackOf(deltaOf(block(byte(kind), data))))
		if err != nil {
			continue
		}
		valid = append(valid, kind)
		want := []string{strings.Repeat("v", 200)}
		if diff := cmp.Diff(want, deltaValues(m.(*Ack).Delta)); diff != "" {
			t.Errorf("block kind %d decoded wrongly (-want +got):\n%s", kind, diff)
		}
	}
	if diff := cmp.Diff([]int{blockZstd, blockRaw}, valid); diff != "" {
		t.Errorf("valid block kinds mismatch (-want +got):\n%s", diff)
	}
}

// T7 test_compressed_serialized_stream
func TestT7_CompressibleStream(t *testing.T) {
	var values []string
	total := 0
	for i := range 100 {
		values = append(values, tenSentences[i%10])
		total += len(tenSentences[i%10])
	}
	d := valuesDelta(values)
	if 3*len(d.enc) >= total {
		t.Errorf("encoded delta is %d bytes: 3× that is not below the %d bytes of sentences", len(d.enc), total)
	}
	if got := blockKinds(t, d.enc); !slices.Equal(got, []uint64{blockZstd}) {
		t.Errorf("block kinds = %v, want one zstd block", got)
	}
	if diff := cmp.Diff(values, deltaValues(decodeDeltaBytes(t, d.enc))); diff != "" {
		t.Errorf("decoded values mismatch (-want +got):\n%s", diff)
	}
}

// T8 test_compressed_serialized_stream_with_random_data
func TestT8_StreamWithRandomData(t *testing.T) {
	r := testRand(t, 8)
	tests := []struct {
		name       string
		sentences  int
		random     int
		wantBlocks int
	}{
		{name: "upstream sizes", sentences: 100, random: 30, wantBlocks: 1},
		// Past 16 KiB the stream spans blocks, and ops straddle them.
		{name: "several blocks", sentences: 1500, random: 600, wantBlocks: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var values []string
			for i := range tt.sentences {
				values = append(values, tenSentences[i%10])
			}
			for range tt.random {
				values = append(values, alnum(r, 30))
			}
			d := valuesDelta(values)
			if got := len(blockKinds(t, d.enc)); got != tt.wantBlocks {
				t.Errorf("%d blocks, want %d", got, tt.wantBlocks)
			}
			if diff := cmp.Diff(values, deltaValues(decodeDeltaBytes(t, d.enc))); diff != "" {
				t.Errorf("decoded values mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A delta whose blocks are partly compressible and partly not mixes both
// kinds, and a valid one decodes through the multi-block path.
func TestMixedBlockKinds(t *testing.T) {
	r := testRand(t, 81)
	var values []string
	for i := range 2000 {
		values = append(values, tenSentences[i%10])
	}
	for range 40 {
		values = append(values, randomBytes(r, 1000))
	}
	d := valuesDelta(values)
	kinds := blockKinds(t, d.enc)
	if !slices.Contains(kinds, blockZstd) || !slices.Contains(kinds, blockRaw) {
		t.Errorf("block kinds = %v, want both zstd and raw blocks", kinds)
	}
	// Decoding twice reuses the pooled stream buffer, after an error too.
	for range 2 {
		if _, err := decodeDelta(&reader{b: d.enc}); err == nil {
			t.Fatalf("random bytes decoded as valid UTF-8")
		}
	}

	// Valid UTF-8 compresses, but a last block below minCompressSize stays
	// raw: stop the sentences just after the second block was flushed.
	w := newDeltaWriter(1 << 30)
	w.addNode(id(1), 0, 0)
	values = nil
	for i := 0; w.nblocks < 2 || len(w.pending) == 0 || len(w.pending) >= minCompressSize; i++ {
		values = append(values, tenSentences[i%10])
		w.addKV(kv("", values[i], uint64(i+1), StatusSet))
	}
	d = w.finish()
	if got, want := blockKinds(t, d.enc), []uint64{blockZstd, blockZstd, blockRaw}; !slices.Equal(got, want) {
		t.Fatalf("block kinds = %v, want %v", got, want)
	}
	// Decoding twice reuses the pooled stream buffer.
	for range 2 {
		if diff := cmp.Diff(values, deltaValues(decodeDeltaBytes(t, d.enc))); diff != "" {
			t.Fatalf("decoded values mismatch (-want +got):\n%s", diff)
		}
	}
}

// T9 test_compressed_serialized_stream_len_when_there_are_no_compressed_blocks
func TestT9_BoundIsExactWhenNothingCompresses(t *testing.T) {
	r := testRand(t, 9)
	tests := []struct {
		name  string
		sizes []int // value sizes of the key-values added after the node header
	}{
		{name: "upstream (a): one small op", sizes: []int{6}},
		{name: "upstream (b): two small ops", sizes: []int{7, 8}},
		{name: "bin8 to bin16 boundary", sizes: []int{200, 30, 10}},
		{name: "exactly 255 then 256 bytes of stream", sizes: []int{226, 1}},
		{name: "one full block", sizes: []int{16000, 300}},
		{name: "several blocks", sizes: []int{20000, 20000, 100, 9000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newDeltaWriter(1 << 30)
			bound := w.bound(sizeNodeOp(id(1), 0, 0))
			w.addNode(id(1), 0, 0)
			for i, n := range tt.sizes {
				v := randomBytes(r, n)
				bound = w.bound(sizeKVOp("", v, uint64(i+1)))
				w.addKV(kv("", v, uint64(i+1), StatusSet))
			}
			d := w.finish()
			if len(d.enc) != bound {
				t.Errorf("encoded delta is %d bytes, bound before the last op was %d", len(d.enc), bound)
			}
			for _, k := range blockKinds(t, d.enc) {
				if k != blockRaw {
					t.Errorf("random data was compressed")
				}
			}
		})
	}
}

// The bound of a stream is what deltaBound says, and a node header alone is
// exact too (empty key-values list).
func TestDeltaBound(t *testing.T) {
	w := newDeltaWriter(1 << 30)
	n := sizeNodeOp(id(1), 0, 0)
	if got, want := w.bound(n), deltaBound(n); got != want {
		t.Errorf("bound(%d) = %d, deltaBound = %d", n, got, want)
	}
	w.addNode(id(1), 0, 0)
	if d := w.finish(); len(d.enc) != deltaBound(n) {
		t.Errorf("node header delta is %d bytes, deltaBound = %d", len(d.enc), deltaBound(n))
	}
	if deltaBound(0) != 1 {
		t.Errorf("deltaBound(0) = %d, want 1 (the empty delta)", deltaBound(0))
	}
}

// T10 test_empty
func TestT10_EmptyValue(t *testing.T) {
	w := newDeltaWriter(1000)
	w.addNode(id(1), 0, 0)
	bound := w.bound(sizeKVOp("", "", 1))
	w.addKV(kv("", "", 1, StatusSet))
	d := w.finish()
	if len(d.enc) > bound {
		t.Errorf("encoded %d bytes, above the bound %d", len(d.enc), bound)
	}
	if diff := cmp.Diff([]string{""}, deltaValues(decodeDeltaBytes(t, d.enc))); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// T11 test_proptest_compressed_stream
func TestT11_PropStreamRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		values := rapid.SliceOfN(rapid.StringN(0, 1000, -1), 1, 100).Draw(t, "values")
		w := newDeltaWriter(1 << 30)
		w.addNode(id(1), 0, 0)
		bound := 0
		for i, v := range values {
			bound = w.bound(sizeKVOp("", v, uint64(i+1)))
			w.addKV(kv("", v, uint64(i+1), StatusSet))
		}
		d := w.finish()
		if len(d.enc) > bound {
			t.Fatalf("encoded %d bytes, above the bound %d computed before the last op", len(d.enc), bound)
		}
		if diff := cmp.Diff(values, deltaValues(decodeDeltaBytes(t, d.enc))); diff != "" {
			t.Fatalf("mismatch (-want +got):\n%s", diff)
		}
	})
}

// tryNode, tryKV and tryMax are upstream's try_add_*: add the op if it fits.
func tryNode(w *deltaWriter, id NodeID, gc, from uint64) bool {
	if !w.fits(sizeNodeOp(id, gc, from)) {
		return false
	}
	w.addNode(id, gc, from)
	return true
}

func tryKV(w *deltaWriter, m KeyValueMutation) bool {
	if !w.fits(sizeKVOp(m.Key, m.Value, m.Version)) {
		return false
	}
	w.addKV(m)
	return true
}

func tryMax(w *deltaWriter, v uint64) bool {
	if !w.fits(sizeMaxOp(v)) {
		return false
	}
	w.addMax(v)
	return true
}

// T18 test_delta_serialization_default
func TestT18_EmptyDelta(t *testing.T) {
	d := newDeltaWriter(MaxDatagramSize).finish()
	if !bytes.Equal(d.enc, []byte{mpFixArray}) {
		t.Errorf("empty delta = % x, want 90", d.enc)
	}
	if got := decodeDeltaBytes(t, d.enc); len(got.Nodes) != 0 {
		t.Errorf("decoded %d nodes, want 0", len(got.Nodes))
	}
	if got := appendDelta(nil, &Delta{}); !bytes.Equal(got, []byte{mpFixArray}) {
		t.Errorf("hand-built empty delta = % x, want 90", got)
	}
}

// T19 test_delta_serialization_with_set_max_version
func TestT19_SetMaxVersion(t *testing.T) {
	w := newDeltaWriter(198)
	if !tryNode(w, id(10001), 80, 50) || !tryMax(w, 100) {
		t.Fatal("ops did not fit in 198 bytes")
	}
	d := w.finish()
	// bin8 header 2 + node op 24 + max op 3 (upstream: 34, with the
	// array16 and block framing a bare delta leaves out).
	if len(d.enc) != 29 {
		t.Errorf("encoded %d bytes, want 29", len(d.enc))
	}
	want := Delta{Nodes: []NodeDelta{{ID: id(10001), LastGCVersion: 80, FromVersionExcluded: 50, MaxVersion: 100}}}
	if diff := cmp.Diff(want, decodeDeltaBytes(t, d.enc), cmpOpts); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, d, cmpOpts); diff != "" {
		t.Errorf("writer's delta mismatch (-want +got):\n%s", diff)
	}
}

// op is one step of a serializer scenario.
type op struct {
	node    NodeID
	gc      uint64
	from    uint64
	kv      *KeyValueMutation
	wantAdd bool
}

func nodeStep(id NodeID, gc, from uint64, ok bool) op {
	return op{node: id, gc: gc, from: from, wantAdd: ok}
}

func kvStep(key, value string, version uint64, status Status, ok bool) op {
	m := kv(key, value, version, status)
	return op{kv: &m, wantAdd: ok}
}

// T20 test_delta_serialization_simple_foo, T21 ..._simple_node,
// T22 ..._simple_with_nodes_to_reset, T23 ..._exceed_mtu_on_add_node,
// T24 ..._exceed_mtu_on_add_kv
func TestT20toT24_BudgetedSerializer(t *testing.T) {
	// Op sizes: node header of id(1000x) with small versions 24, "keyNN" =
	// "valNN" 16, "key12" = "" 11, "key12" = "val12aaaaaaaaaabcc" 29. A delta
	// this small is a bare bin: a bin8 header (2) + the ops. Upstream's
	// framing is 7 bytes (array16 + block header): its budgets are 5 bytes
	// less here, to test the same boundaries.
	twoNodes := []op{
		nodeStep(id(10001), 0, 0, true),
		kvStep("key11", "val11", 1, StatusSet, true),
		kvStep("key12", "", 2, StatusDeleted, true),
		nodeStep(id(10002), 0, 0, true),
	}
	tests := []struct {
		name     string
		budget   int
		ops      []op
		wantSize int
		want     []NodeDelta
	}{
		{
			name:   "T20 all fit",
			budget: 198,
			ops: append(slices.Clone(twoNodes),
				kvStep("key21", "val21", 2, StatusSet, true),
				kvStep("key22", "val22", 3, StatusSet, true)),
			wantSize: 2 + 24 + 16 + 11 + 24 + 16 + 16,
			want: []NodeDelta{
				{ID: id(10001), KeyValues: []KeyValueMutation{kv("key11", "val11", 1, StatusSet), kv("key12", "", 2, StatusDeleted)}, MaxVersion: 2},
				{ID: id(10002), KeyValues: []KeyValueMutation{kv("key21", "val21", 2, StatusSet), kv("key22", "val22", 3, StatusSet)}, MaxVersion: 3},
			},
		},
		{
			name:     "T21 bound equal to the budget is accepted",
			budget:   2 + 24 + 16 + 11 + 24,
			ops:      twoNodes,
			wantSize: 77,
			want: []NodeDelta{
				{ID: id(10001), KeyValues: []KeyValueMutation{kv("key11", "val11", 1, StatusSet), kv("key12", "", 2, StatusDeleted)}, MaxVersion: 2},
				{ID: id(10002)},
			},
		},
		{
			name:     "T22 larger budget",
			budget:   150,
			ops:      twoNodes,
			wantSize: 77,
			want: []NodeDelta{
				{ID: id(10001), KeyValues: []KeyValueMutation{kv("key11", "val11", 1, StatusSet), kv("key12", "", 2, StatusDeleted)}, MaxVersion: 2},
				{ID: id(10002)},
			},
		},
		{
			name:   "T23 node header one byte over the budget",
			budget: 76,
			ops: []op{
				nodeStep(id(10001), 0, 0, true),
				kvStep("key11", "val11", 1, StatusSet, true),
				kvStep("key12", "", 2, StatusDeleted, true),
				nodeStep(id(10002), 0, 1, false),
			},
			wantSize: 53,
			want: []NodeDelta{
				{ID: id(10001), KeyValues: []KeyValueMutation{kv("key11", "val11", 1, StatusSet), kv("key12", "", 2, StatusDeleted)}, MaxVersion: 2},
			},
		},
		{
			name:   "T24 key-value over the budget",
			budget: 70,
			ops: []op{
				nodeStep(id(10001), 0, 1, true),
				kvStep("key11", "val11", 1, StatusSet, true),
				kvStep("key12", "val12aaaaaaaaaabcc", 2, StatusSet, false),
			},
			wantSize: 42,
			want: []NodeDelta{
				{ID: id(10001), FromVersionExcluded: 1, KeyValues: []KeyValueMutation{kv("key11", "val11", 1, StatusSet)}, MaxVersion: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newDeltaWriter(tt.budget)
			for i, o := range tt.ops {
				var added bool
				if o.kv != nil {
					added = tryKV(w, *o.kv)
				} else {
					added = tryNode(w, o.node, o.gc, o.from)
				}
				if added != o.wantAdd {
					t.Fatalf("op %d: added = %v, want %v", i, added, o.wantAdd)
				}
			}
			d := w.finish()
			// wantSize is the raw size: a compressed block is smaller.
			compressed := slices.Contains(blockKinds(t, d.enc), blockZstd)
			if (!compressed && len(d.enc) != tt.wantSize) || len(d.enc) > tt.wantSize || len(d.enc) > tt.budget {
				t.Errorf("encoded %d bytes (compressed: %v), want %d (budget %d)", len(d.enc), compressed, tt.wantSize, tt.budget)
			}
			if diff := cmp.Diff(tt.want, decodeDeltaBytes(t, d.enc).Nodes, cmpOpts); diff != "" {
				t.Errorf("decoded delta mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, d.Nodes, cmpOpts); diff != "" {
				t.Errorf("writer's delta mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// T25 test_delta_serialization_panic_if_add_after_exceed. Upstream panics
// when the serializer is built with mtu < 100. The Go writer takes any
// budget: nothing fits below the smallest op and the result is the 1-byte
// empty delta, without panicking. (The Engine never asks for less than 1
// byte: below that it does not answer, see TestT84.)
func TestT25_TinyBudgetYieldsEmptyDelta(t *testing.T) {
	smallest := sizeNodeOp(NodeID{Addr: id(1).Addr}, 0, 0) + sizeMaxOp(0)
	for budget := 1; budget < 2+smallest; budget++ {
		w := newDeltaWriter(budget)
		if tryNode(w, id(1), 0, 0) {
			t.Fatalf("budget %d: a node header fit", budget)
		}
		if d := w.finish(); !bytes.Equal(d.enc, []byte{mpFixArray}) || len(d.Nodes) != 0 {
			t.Fatalf("budget %d: delta = % x with %d nodes, want the empty delta", budget, d.enc, len(d.Nodes))
		}
	}
	e := newEngine(t, forTest(1))
	setVersion(t, addNode(t, e, id(2)), "k", "v", 1)
	for budget := 1; budget < 40; budget++ {
		d := e.deltaFor(t0, nil, budget)
		if len(d.enc) > budget {
			t.Errorf("budget %d: computeDelta encoded %d bytes", budget, len(d.enc))
		}
	}
}

// T26 test_delta_op_tag
func TestT26_OpTags(t *testing.T) {
	var valid []uint64
	for tag := range uint64(300) {
		if opFields(tag) != 0 {
			valid = append(valid, tag)
		}
	}
	// opNodeRef (3) is ours: a push names its node by ref (docs/PROTOCOL.md §11.10).
	if diff := cmp.Diff([]uint64{opNode, opKV, opMax, opNodeRef}, valid); diff != "" {
		t.Errorf("valid op tags mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{0, 1, 2, 3}, valid); diff != "" {
		t.Errorf("op tags moved (-want +got):\n%s", diff)
	}
}

// docs/PROTOCOL.md §4.2, §11.10: a delta never exceeds its budget, whatever the ops.
func TestPropDeltaWithinBudget(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		budget := rapid.IntRange(1, 70000).Draw(t, "budget")
		w := newDeltaWriter(budget)
		n := rapid.IntRange(0, 60).Draw(t, "ops")
		for i := range n {
			switch {
			case len(w.delta.Nodes) == 0 || rapid.IntRange(0, 9).Draw(t, "kind") == 0:
				tryNode(w, NodeID{Name: fmt.Sprintf("n%d", i), Addr: id(uint16(i)).Addr}, rapid.Uint64().Draw(t, "gc"), rapid.Uint64().Draw(t, "from"))
			default:
				version := w.delta.Nodes[len(w.delta.Nodes)-1].MaxVersion + rapid.Uint64Range(1, 1<<40).Draw(t, "step")
				value := rapid.StringN(0, 3000, -1).Draw(t, "value")
				tryKV(w, kv(rapid.StringN(0, 20, -1).Draw(t, "key"), value, version, Status(rapid.IntRange(0, 2).Draw(t, "status"))))
			}
		}
		d := w.finish()
		if len(d.enc) > budget {
			t.Fatalf("encoded %d bytes, budget %d", len(d.enc), budget)
		}
		got := decodeDeltaBytes(t, d.enc)
		if diff := cmp.Diff(d.Nodes, got.Nodes, cmpOpts); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}

// bytesPerOp measures the bytes allocated by one call of f, after a warm-up.
func bytesPerOp(f func()) uint64 {
	f()
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// A datagram of compressed zeros cannot make a receiver decode (or
// allocate) more than 16 KiB per block and 1 MiB per delta.
func TestZstdBombsAreRefused(t *testing.T) {
	zeros := func(n int) []byte { return zstdEncoder().EncodeAll(make([]byte, n), nil) }
	blocks := func(n, size int) [][]byte {
		var out [][]byte
		for range n {
			out = append(out, block(blockZstd, zeros(size)))
		}
		return out
	}
	tests := []struct {
		name     string
		datagram []byte
		maxAlloc uint64
	}{
		{name: "one block of 16 KiB + 1 zeros", datagram: ackOf(deltaOf(block(blockZstd, zeros(blockThreshold+1)))), maxAlloc: 128 << 10},
		{name: "one block of 1 MiB zeros", datagram: ackOf(deltaOf(block(blockZstd, zeros(1<<20)))), maxAlloc: 128 << 10},
		{name: "two blocks, the second too large", datagram: ackOf(deltaOf(block(blockZstd, zeros(100)), block(blockZstd, zeros(64<<10)))), maxAlloc: 128 << 10},
		// 64 blocks of 16 KiB are allowed (the stream then fails to parse:
		// zeros are not ops); the 65th exceeds the 1 MiB cap.
		{name: "65 blocks of 16 KiB", datagram: ackOf(deltaOf(blocks(65, blockThreshold)...)), maxAlloc: 2 << 20},
		{name: "64 blocks then a raw block", datagram: ackOf(deltaOf(append(blocks(64, blockThreshold), block(blockRaw, []byte{1}))...)), maxAlloc: 2 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.datagram) > 4096 {
				t.Fatalf("the bomb is %d bytes, expected a small datagram", len(tt.datagram))
			}
			if _, err := DecodeMessage(tt.datagram); err == nil {
				t.Fatal("DecodeMessage accepted the bomb")
			}
			if got := bytesPerOp(func() { _, _ = DecodeMessage(tt.datagram) }); got > tt.maxAlloc {
				t.Errorf("decoding allocated %d bytes per datagram of %d bytes, want at most %d", got, len(tt.datagram), tt.maxAlloc)
			}
		})
	}
	// A zstd frame that declares a huge content size is refused up front.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0} // single segment, FCS 2^40
	frame = append(frame, 0x03, 0x00, 0x10, 0x00)                         // last RLE block of 2^17... byte 0
	if _, err := DecodeMessage(ackOf(deltaOf(block(blockZstd, frame)))); err == nil {
		t.Error("a frame declaring 1 TiB was accepted")
	}
}

// A hostile datagram (docs/PROTOCOL.md §11.1): a digest header claiming 4 billion entries in a
// 20-byte datagram fails before allocating for them.
func TestHugeCountsDoNotAllocate(t *testing.T) {
	tests := []struct {
		name     string
		datagram []byte
	}{
		{name: "digest array32", datagram: slices.Concat(envelope(TypeSyn), []byte{mpFixArray | 2}, appendStr(nil, "cluster"), []byte{mpArray32, 0xff, 0xff, 0xff, 0xff}, make([]byte, 4))},
		{name: "synack digest array32", datagram: slices.Concat(envelope(TypeSynAck), []byte{mpFixArray | 2, mpArray32, 0xff, 0xff, 0xff, 0xff}, make([]byte, 10))},
		{name: "delta array16 blocks", datagram: ackOf(append([]byte{mpArray16, 0xff, 0xff}, make([]byte, 12)...))},
		{name: "str32 cluster id", datagram: slices.Concat(envelope(TypeSyn), []byte{mpFixArray | 2, mpStr32, 0xff, 0xff, 0xff, 0xff}, make([]byte, 10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.datagram) > 24 {
				t.Fatalf("datagram of %d bytes, want at most 24", len(tt.datagram))
			}
			if _, err := DecodeMessage(tt.datagram); err == nil {
				t.Fatal("accepted")
			}
			if got := bytesPerOp(func() { _, _ = DecodeMessage(tt.datagram) }); got > 1024 {
				t.Errorf("allocated %d bytes per decode, want at most 1 KiB", got)
			}
		})
	}
}
