package chitchat

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Delta wire format (docs/PROTOCOL.md §11.9–§11.11):
//
//	delta = fixarray(0)                              empty delta (1 byte)
//	      | bin(ops)                                 one raw block, unframed
//	      | array16(n) block...                      n ≥ 1
//	block = [kind uint, data bin]                    kind 1: zstd frame, 2: raw
//
// A delta whose ops fit one block that stays raw (every push, most Acks) is
// sent as a bare bin: the array16 header and the block's framing would cost
// 5 bytes of a push of about 60.
//
// The blocks' decoded data, concatenated, is a stream of ops (an op may
// straddle two blocks):
//
//	[0, name, generation, addr, last_gc_version, from_version_excluded]   node header
//	[1, key, value, version, status]                                      key-value of the last node
//	[2, max_version]                                                      max version of a node without key-values
//
// The writer fills a raw block and compresses it once it holds
// blockThreshold bytes (or at the end), keeping it raw when zstd does not
// make it smaller. Its size bound assumes the block being filled stays raw,
// so it is exact when nothing compresses and an upper bound otherwise: an
// encoded delta never exceeds the budget it was built for.

const (
	blockZstd = 1
	blockRaw  = 2

	// blockThreshold is the raw size of a block. 16 KiB as upstream: large
	// enough for zstd to find repetition across keys, small enough to bound
	// what one block can decompress to.
	blockThreshold = 16 << 10
	// blockFrame is a block's framing before its data's bin header:
	// fixarray and kind.
	blockFrame = 1 + 1
	// blockOverhead bounds the framing of one block: blockFrame and a bin16
	// header (a block's data is never above blockThreshold bytes).
	blockOverhead = blockFrame + 3
	// deltaHeaderSize is the array16 header of a non-empty delta.
	deltaHeaderSize = 3
	// minCompressSize: below this a zstd frame costs more than it saves.
	minCompressSize = 96
	// maxDeltaStream caps the decoded op stream of one delta (16 maximal
	// datagrams): it bounds what a hostile datagram of compressed zeros can
	// make a receiver allocate.
	maxDeltaStream = 1 << 20
)

// The zstd codecs are built on first use, not at package initialization: a
// node that never compresses a block (small states, the demo's first
// rounds) never allocates an encoder, and importing the package costs no
// heap. One encoder, not one per CPU: a SpeedDefault encoder holds about
// 1.3 MiB of match tables, and the engine encodes under the Server's lock,
// so a second one would only sit idle (in-process clusters share it; a block
// encodes in microseconds). The output does not depend on the concurrency.
var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithWindowSize(blockThreshold),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // UDP checksums (and AEAD, when enabled) cover integrity
		)
		if err != nil {
			panic(fmt.Sprintf("chitchat: zstd encoder: %v", err))
		}
		return enc
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(maxDeltaStream),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderConcurrency(1),
		)
		if err != nil {
			panic(fmt.Sprintf("chitchat: zstd decoder: %v", err))
		}
		return dec
	})
)

// warmZstd builds both codecs now (server_zstd.go does it at
// initialization in test binaries, outside any testing/synctest bubble).
func warmZstd() {
	zstdEncoder().EncodeAll([]byte{0}, nil)
	zstdDecoder()
}

// Op sizes, exact.

func sizeNodeOp(id NodeID, lastGC, from uint64) int {
	return 1 + 1 + sizeStr(len(id.Name)) + sizeUint(id.Generation) + sizeAddr(id.Addr) + sizeUint(lastGC) + sizeUint(from)
}

func sizeNodeRefOp(ref, lastGC, from uint64) int {
	return 1 + 1 + sizeUint(ref) + sizeUint(lastGC) + sizeUint(from)
}

func sizeKVOp(key, value string, version uint64) int {
	return 1 + 1 + sizeStr(len(key)) + sizeStr(len(value)) + sizeUint(version) + 1
}

func sizeMaxOp(maxVersion uint64) int { return 1 + 1 + sizeUint(maxVersion) }

// deltaBound returns the bound on the encoded size of a delta made of ops
// totalling stream bytes, when everything is stored raw.
func deltaBound(stream int) int {
	switch {
	case stream == 0:
		return 1
	case stream < blockThreshold:
		return sizeBin(stream) // bare
	}
	return deltaHeaderSize + rawBlocksSize(stream)
}

// rawBlocksSize returns the exact encoded size of n op bytes stored as raw
// blocks: full blocks of blockThreshold bytes (bin16 headers), then the rest
// (a bin8 header when it is below 256 bytes).
func rawBlocksSize(n int) int {
	full, rest := n/blockThreshold, n%blockThreshold
	size := full * (blockOverhead + blockThreshold)
	if rest > 0 {
		size += blockFrame + sizeBin(rest)
	}
	return size
}

// deltaWriter builds a delta and its encoding under a byte budget. An
// Engine keeps one and reuses its scratch buffers (pending, zbuf) from delta
// to delta; what a delta returns (encoding, nodes, key-values) is its own.
type deltaWriter struct {
	budget  int
	buf     []byte // array16 header placeholder, then the flushed blocks (or the bare bin); nil until the first flush
	nblocks int
	bare    bool   // buf is a bare bin: one raw block, the last (flush)
	pending []byte // op bytes of the block being filled
	zbuf    []byte // zstd output of the block being flushed
	stream  int    // op bytes written in all
	delta   Delta
	kvs     kvRuns // backs the KeyValues of every node of delta
}

// maxKeptScratch bounds the scratch buffers a writer keeps for the next
// delta: a large delta (a catch-up) does not pin its block-sized buffers.
const maxKeptScratch = 4 << 10

func newDeltaWriter(budget int) *deltaWriter {
	w := &deltaWriter{}
	w.reset(budget)
	return w
}

// reset starts a new delta within budget, keeping the scratch buffers.
func (w *deltaWriter) reset(budget int) {
	pending, zbuf := w.pending[:0], w.zbuf[:0]
	if cap(pending) > maxKeptScratch {
		pending = nil
	}
	if cap(zbuf) > maxKeptScratch {
		zbuf = nil
	}
	*w = deltaWriter{budget: budget, pending: pending, zbuf: zbuf}
}

// emptyDeltaEnc is the encoding of every empty delta. It is shared, and
// never written to.
var emptyDeltaEnc = []byte{mpFixArray}

// fits reports whether ops totalling n more bytes can be added.
func (w *deltaWriter) fits(n int) bool {
	if w.stream+n > max(maxDeltaStream, w.budget) {
		return false
	}
	return w.bound(n) <= w.budget
}

// bound returns the bound on the encoded size of the delta once ops totalling
// n more bytes are added, assuming the blocks not yet flushed stay raw: exact
// when they do.
func (w *deltaWriter) bound(n int) int {
	if w.buf == nil {
		return deltaBound(len(w.pending) + n)
	}
	return len(w.buf) + rawBlocksSize(len(w.pending)+n)
}

func (w *deltaWriter) addNode(id NodeID, lastGC, from uint64) {
	b := append(w.pending, mpFixArray|6, 0)
	b = appendStr(b, id.Name)
	b = appendUint(b, id.Generation)
	b = appendAddr(b, id.Addr)
	b = appendUint(b, lastGC)
	b = appendUint(b, from)
	w.wrote(b)
	w.delta.Nodes = appendDoubling(w.delta.Nodes, NodeDelta{ID: id, LastGCVersion: lastGC, FromVersionExcluded: from})
	w.kvs.startNode()
}

// addNodeRef starts the node named by ref (opNodeRef).
func (w *deltaWriter) addNodeRef(ref, lastGC, from uint64) {
	b := append(w.pending, mpFixArray|4, opNodeRef)
	b = appendUint(b, ref)
	b = appendUint(b, lastGC)
	b = appendUint(b, from)
	w.wrote(b)
	w.delta.Nodes = appendDoubling(w.delta.Nodes, NodeDelta{Ref: ref, LastGCVersion: lastGC, FromVersionExcluded: from})
	w.kvs.startNode()
}

func (w *deltaWriter) addKV(kv KeyValueMutation) {
	b := append(w.pending, mpFixArray|5, 1)
	b = appendStr(b, kv.Key)
	b = appendStr(b, kv.Value)
	b = appendUint(b, kv.Version)
	b = append(b, byte(kv.Status))
	w.wrote(b)
	nd := &w.delta.Nodes[len(w.delta.Nodes)-1]
	nd.KeyValues = w.kvs.add(kv)
	nd.MaxVersion = kv.Version
}

// appendDoubling appends v to s, doubling the capacity (at least 8) when s is
// full: append grows large slices by only 1.25×, which made the node list of
// a delta of thousands of nodes allocate five times its size.
func appendDoubling[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = slices.Grow(s, max(len(s), 8))
	}
	return append(s, v)
}

// kvRuns allocates the KeyValues of the consecutive node deltas of one delta
// from shared chunks instead of one growing slice per node. A node's entries
// stay contiguous: when a chunk is full, the next one is twice as large and
// the current node's entries move into it. A delta of n key-values thus
// allocates O(log n) times and about 2n entries, whatever the sizes of its
// nodes.
type kvRuns struct {
	chunk []KeyValueMutation
	start int // the current node's first entry in chunk
}

// startNode begins the entries of the next node.
func (k *kvRuns) startNode() { k.start = len(k.chunk) }

// add appends kv to the current node's entries and returns them, with the
// capacity cut to the length so that appending to them copies rather than
// overwrite the next node's.
func (k *kvRuns) add(kv KeyValueMutation) []KeyValueMutation {
	if len(k.chunk) == cap(k.chunk) {
		next := make([]KeyValueMutation, 0, max(2*cap(k.chunk), 8))
		k.chunk = append(next, k.chunk[k.start:]...)
		k.start = 0
	}
	k.chunk = append(k.chunk, kv)
	return k.chunk[k.start:len(k.chunk):len(k.chunk)]
}

func (w *deltaWriter) addMax(v uint64) {
	b := append(w.pending, mpFixArray|2, 2)
	b = appendUint(b, v)
	w.wrote(b)
	w.delta.Nodes[len(w.delta.Nodes)-1].MaxVersion = v
}

// wrote records pending grown to b and flushes every full block.
func (w *deltaWriter) wrote(b []byte) {
	w.stream += len(b) - len(w.pending)
	w.pending = b
	for len(w.pending) >= blockThreshold {
		w.flush(w.pending[:blockThreshold], true)
		w.pending = w.pending[:copy(w.pending, w.pending[blockThreshold:])]
	}
}

// flush appends a block of data to the encoding; more tells that further
// blocks will follow.
func (w *deltaWriter) flush(data []byte, more bool) {
	kind := blockRaw
	only := w.buf == nil && !more
	if len(data) >= minCompressSize {
		if cap(w.zbuf) < len(data) {
			w.zbuf = make([]byte, 0, len(data))
		}
		c := zstdEncoder().EncodeAll(data, w.zbuf[:0])
		w.zbuf = c[:0]
		saves := len(c) < len(data)
		if only {
			// Framed, the only block costs deltaHeaderSize+blockOverhead
			// where bare it costs a bin header: compressed only if that
			// is still smaller, so that bound stays a bound.
			saves = deltaHeaderSize+blockFrame+sizeBin(len(c)) < sizeBin(len(data))
		}
		if saves {
			kind, data = blockZstd, c
		}
	}
	if only && kind == blockRaw {
		// The only block, raw: a bare bin (the format above).
		w.buf = appendBinHeader(make([]byte, 0, 5+len(data)), len(data))
		w.buf = append(w.buf, data...)
		w.nblocks, w.bare = 1, true
		return
	}
	if w.buf == nil {
		// The encoding never exceeds the budget: reserve a datagram's
		// worth at once if more blocks follow, else just this block.
		c := deltaHeaderSize + blockOverhead + len(data)
		if more {
			c = max(c, min(w.budget, MaxDatagramSize))
		}
		w.buf = append(make([]byte, 0, c), mpArray16, 0, 0)
	}
	w.buf = append(w.buf, mpFixArray|2, byte(kind))
	w.buf = appendBinHeader(w.buf, len(data))
	w.buf = append(w.buf, data...)
	w.nblocks++
}

// finish returns the delta with its encoding cached.
func (w *deltaWriter) finish() Delta {
	if len(w.pending) > 0 {
		w.flush(w.pending, false)
		w.pending = w.pending[:0]
	}
	switch {
	case w.nblocks == 0:
		w.delta.enc = emptyDeltaEnc
	case w.bare:
		w.delta.enc = w.buf
	default:
		w.buf[1], w.buf[2] = byte(w.nblocks>>8), byte(w.nblocks)
		w.delta.enc = w.buf
	}
	d := w.delta
	w.reset(w.budget) // drop the references to what d now owns
	return d
}

// appendDelta appends the encoding of d: the cached one if the writer built
// it, else a fresh raw encoding (deltas built by hand, in tests and tools).
func appendDelta(b []byte, d *Delta) []byte {
	if d.enc != nil {
		return append(b, d.enc...)
	}
	return append(b, buildDelta(d.Nodes).enc...)
}

// buildDelta returns the delta of nodes, with its encoding, without a
// budget: a node with no key-value carries its max version in a max op.
func buildDelta(nodes []NodeDelta) Delta {
	w := newDeltaWriter(int(^uint(0) >> 1))
	for _, nd := range nodes {
		if nd.Ref != 0 { // a push's node, forwarded as it came
			w.addNodeRef(nd.Ref, nd.LastGCVersion, nd.FromVersionExcluded)
		} else {
			w.addNode(nd.ID, nd.LastGCVersion, nd.FromVersionExcluded)
		}
		for _, kv := range nd.KeyValues {
			w.addKV(kv)
		}
		if len(nd.KeyValues) == 0 && nd.MaxVersion > 0 {
			w.addMax(nd.MaxVersion)
		}
	}
	return w.finish()
}

// minBlockSize is the smallest encoding of a block.
const minBlockSize = 1 + 1 + 2

var streamPool = sync.Pool{New: func() any { return new([]byte) }}

func decodeDelta(r *reader) (Delta, error) {
	start := r.off
	var stream []byte
	var err error
	if r.binNext() {
		// One raw block, unframed: parsed where it lies.
		stream, err = r.bin("delta")
		switch {
		case err != nil:
		case len(stream) == 0:
			r.off = start
			err = r.fail("delta: empty bin (the empty delta is an empty array)")
		case len(stream) > r.streamLimit():
			r.off = start
			err = r.fail("delta stream too large")
		}
	} else {
		var n int
		if n, err = r.arrayHeader("delta", minBlockSize); err != nil || n == 0 {
			return Delta{}, err
		}
		if n == 1 {
			// The common case: one block, parsed where it lies when it is raw.
			stream, err = readBlock(r, nil)
		} else {
			bufp := streamPool.Get().(*[]byte)
			defer streamPool.Put(bufp)
			stream = (*bufp)[:0]
			for range n {
				if stream, err = readBlock(r, stream); err != nil {
					break
				}
			}
			*bufp = stream[:0] // keep the grown buffer; parsed strings are copies
		}
	}
	if err != nil {
		return Delta{}, err
	}
	nodes, err := parseOps(stream)
	if err != nil {
		// Op errors are located in the (decompressed) op stream: report the
		// delta's offset in the datagram, and the stream offset in the text.
		var de *DecodeError
		if errors.As(err, &de) {
			de.Reason = fmt.Sprintf("delta op stream offset %d: %s", de.Offset, de.Reason)
			de.Offset = start
		}
		return Delta{}, err
	}
	return Delta{Nodes: nodes}, nil
}

// readBlock appends the decoded data of the next block to stream. With a nil
// stream, a raw block is returned in place, without copying. On error it
// still returns stream (possibly grown), so that the caller's pooled buffer
// survives hostile datagrams.
func readBlock(r *reader, stream []byte) ([]byte, error) {
	if err := r.fixArray("delta block", 2); err != nil {
		return stream, err
	}
	kind, err := r.uint("block kind")
	if err != nil {
		return stream, err
	}
	data, err := r.bin("block data")
	if err != nil {
		return stream, err
	}
	switch kind {
	case blockRaw:
		if stream == nil {
			return data, nil
		}
		if len(stream)+len(data) > r.streamLimit() {
			return stream, r.fail("delta stream too large")
		}
		return append(stream, data...), nil
	case blockZstd:
		room := min(blockThreshold, r.streamLimit()-len(stream))
		if room <= 0 {
			return stream, r.fail("delta stream too large")
		}
		if cap(stream)-len(stream) < room {
			// Grow geometrically: growing by a constant made a 1 MiB
			// stream cost 8 MiB of allocations.
			grown := make([]byte, len(stream), min(max(len(stream)+room, 2*cap(stream), 4*blockThreshold), r.streamLimit()))
			copy(grown, stream)
			stream = grown
		}
		// The cap limit makes DecodeAll fail rather than write more than
		// room bytes: a block never decodes to more than blockThreshold.
		out, err := zstdDecoder().DecodeAll(data, stream[len(stream):len(stream):len(stream)+room])
		if err != nil {
			return stream, &DecodeError{Offset: r.off, Reason: "zstd block", Err: err}
		}
		return stream[:len(stream)+len(out)], nil
	}
	return stream, r.fail(fmt.Sprintf("unknown block kind %d", kind))
}

const (
	opNode    = 0
	opKV      = 1
	opMax     = 2
	opNodeRef = 3 // a node header naming the node by its ref
)

// parseOps decodes the op stream of a delta, enforcing the rules of the
// format: ops belong to a preceding node header; a node appears once;
// versions strictly increase within a node, starting above 0; a max-version
// op only stands for a node without key-values. Error offsets are relative
// to the op stream.
func parseOps(stream []byte) ([]NodeDelta, error) {
	r := &reader{b: stream}
	var nodes []NodeDelta
	var kvs kvRuns // backs every node's KeyValues
	var seen map[nodeKey]struct{}
	setMax := false // the current node had a max-version op
	for r.remaining() > 0 {
		start := r.off
		n, err := r.arrayHeader("delta op", 1)
		if err != nil {
			return nil, err
		}
		tag, err := r.uint("op tag")
		if err != nil {
			return nil, err
		}
		want := opFields(tag)
		if want == 0 {
			r.off = start
			return nil, r.fail(fmt.Sprintf("unknown delta op %d", tag))
		}
		if n != want {
			r.off = start
			return nil, r.fail(fmt.Sprintf("delta op %d: want %d fields, got %d", tag, want, n))
		}
		if tag != opNode && tag != opNodeRef && len(nodes) == 0 {
			r.off = start
			return nil, r.fail("delta op before any node header")
		}
		switch tag {
		case opNode, opNodeRef:
			var nd NodeDelta
			if tag == opNode {
				nd.ID, err = decodeNodeID(r)
			} else if nd.Ref, err = r.uint("node ref"); err == nil && nd.Ref == 0 {
				// 0 is "no ref" in a NodeDelta (a SHA-256 prefix is 0
				// with probability 2^-64): refused, so that what decodes
				// re-encodes the same.
				r.off = start
				return nil, r.fail("node ref 0")
			}
			if err != nil {
				return nil, err
			}
			if nd.LastGCVersion, err = r.uint("last gc version"); err != nil {
				return nil, err
			}
			if nd.FromVersionExcluded, err = r.uint("from version"); err != nil {
				return nil, err
			}
			if dup(nodes, &seen, nd.key()) {
				r.off = start
				if tag == opNodeRef {
					return nil, r.fail(fmt.Sprintf("node ref %#x appears twice in one delta", nd.Ref))
				}
				return nil, r.fail(fmt.Sprintf("node %v appears twice in one delta", nd.ID))
			}
			nodes = appendDoubling(nodes, nd)
			kvs.startNode()
			setMax = false
		case opKV:
			nd := &nodes[len(nodes)-1]
			var kv KeyValueMutation
			if kv.Key, err = r.str("key"); err != nil {
				return nil, err
			}
			if kv.Value, err = r.str("value"); err != nil {
				return nil, err
			}
			if kv.Version, err = r.uint("version"); err != nil {
				return nil, err
			}
			status, err := r.uint("status")
			if err != nil {
				return nil, err
			}
			if kv.Status = Status(status); status > uint64(StatusDeleteAfterTTL) {
				r.off = start
				return nil, r.fail(fmt.Sprintf("invalid status %d", status))
			}
			if setMax || kv.Version <= nd.MaxVersion {
				r.off = start
				return nil, r.fail(fmt.Sprintf("node %v: version %d does not follow %d", nd.ID, kv.Version, nd.MaxVersion))
			}
			nd.KeyValues = kvs.add(kv)
			nd.MaxVersion = kv.Version
		case opMax:
			nd := &nodes[len(nodes)-1]
			v, err := r.uint("max version")
			if err != nil {
				return nil, err
			}
			if setMax || len(nd.KeyValues) > 0 {
				r.off = start
				return nil, r.fail(fmt.Sprintf("node %v: max-version op after key-values", nd.ID))
			}
			nd.MaxVersion = v
			setMax = true
		}
	}
	return nodes, nil
}

// opFields returns the number of fields of an op, 0 for an unknown op.
func opFields(tag uint64) int {
	switch tag {
	case opNode:
		return 6
	case opKV:
		return 5
	case opMax:
		return 2
	case opNodeRef:
		return 4
	}
	return 0
}

// nodeKey is how a node delta names its node: by ID, or by ref.
type nodeKey struct {
	id  NodeID
	ref uint64
}

func (nd *NodeDelta) key() nodeKey { return nodeKey{id: nd.ID, ref: nd.Ref} }

// dup reports whether id is already in nodes, switching from a linear scan to
// a set once the delta is large.
func dup(nodes []NodeDelta, seen *map[nodeKey]struct{}, id nodeKey) bool {
	const linear = 8
	if len(nodes) < linear {
		for i := range nodes {
			if nodes[i].key() == id {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[nodeKey]struct{}, 2*len(nodes))
		for i := range nodes {
			(*seen)[nodes[i].key()] = struct{}{}
		}
	}
	if _, ok := (*seen)[id]; ok {
		return true
	}
	(*seen)[id] = struct{}{}
	return false
}
