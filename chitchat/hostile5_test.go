package chitchat

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// Hostile review of d57555c (bare deltas, implicit range start) and 700b6ef
// (kept death notices).

// hostile5Value draws a value that zstd compresses well, a little or not at
// all, so that the writer's compression choices (the lone block's framed
// versus bare comparison above all) are exercised on both sides.
func hostile5Value(t *rapid.T, r *rand.Rand, n int) string {
	switch rapid.IntRange(0, 3).Draw(t, "value kind") {
	case 0:
		return strings.Repeat("ab", n/2+1)[:n]
	case 1:
		return alnum(r, n)
	case 2:
		// Random, then a run: zstd saves about the run, less its frame,
		// so a run of the right length makes the compressed block a byte
		// or two smaller or larger than the raw one.
		k := rapid.IntRange(0, n).Draw(t, "run")
		return hostile5ASCII(r, n-k) + strings.Repeat("q", k)
	}
	return hostile5ASCII(r, n)
}

// hostile5ASCII returns n random ASCII bytes: valid UTF-8 (the decoder
// checks it) and as little compressible as UTF-8 gets (7 bits of 8), so
// (klauspost/compress's zstd at SpeedDefault does not entropy-code
// literals without matches: such data never compresses).
func hostile5ASCII(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(128))
	}
	return string(b)
}

// hostile5Budget draws a budget on one of the boundaries where the
// encoding changes form: bin8/bin16 headers (256), the bare form's end and
// the first block flush (blockThreshold), bin16/bin32 (65,536), the
// compression threshold (minCompressSize), or anywhere.
func hostile5Budget(t *rapid.T) int {
	edges := []int{2, 3, 30, minCompressSize, 256, 258, 1400, blockThreshold, blockThreshold + 8, 2 * blockThreshold, 65536, MaxDatagramSize}
	switch rapid.IntRange(0, 3).Draw(t, "budget kind") {
	case 0:
		return rapid.IntRange(1, 70000).Draw(t, "budget")
	}
	return max(1, rapid.SampledFrom(edges).Draw(t, "edge")+rapid.IntRange(-8, 8).Draw(t, "offset"))
}

// A delta never exceeds its budget, is exact when nothing compresses,
// round-trips through our decoder and vmihailenco's, and EncodedSize of a
// message carrying it is its encoding's length, whatever the form (empty,
// bare, framed, compressed).
func TestHostile5PropDeltaFormsWithinBudget(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 5))
		budget := hostile5Budget(t)
		w := newDeltaWriter(budget)
		bound := 1
		for i := range rapid.IntRange(0, 12).Draw(t, "ops") {
			if len(w.delta.Nodes) == 0 || rapid.IntRange(0, 5).Draw(t, "kind") == 0 {
				nid := NodeID{Name: fmt.Sprintf("n%d", i), Addr: id(uint16(i)).Addr}
				if rapid.Bool().Draw(t, "by ref") {
					ref := uint64(i+1)<<40 + rapid.Uint64Range(0, 1<<39).Draw(t, "ref") // unique: the decoder refuses a ref twice
					if w.fits(sizeNodeRefOp(ref, 0, 0)) {
						bound = w.bound(sizeNodeRefOp(ref, 0, 0))
						w.addNodeRef(ref, 0, 0)
					}
				} else if w.fits(sizeNodeOp(nid, 0, 0)) {
					bound = w.bound(sizeNodeOp(nid, 0, 0))
					w.addNode(nid, 0, 0)
				}
				continue
			}
			// Sizes around the points where the stream crosses 256 bytes,
			// minCompressSize and blockThreshold.
			n := rapid.SampledFrom([]int{0, 1, 60, 90, 100, 200, 230, 250, 1000, 8000, 16300, 16400, 30000}).Draw(t, "value size") +
				rapid.IntRange(0, 40).Draw(t, "value jitter")
			version := w.delta.Nodes[len(w.delta.Nodes)-1].MaxVersion + 1
			m := kv("k", hostile5Value(t, r, n), version, StatusSet)
			if w.fits(sizeKVOp(m.Key, m.Value, m.Version)) {
				bound = w.bound(sizeKVOp(m.Key, m.Value, m.Version))
				w.addKV(m)
			}
		}
		d := w.finish()
		if len(d.enc) > budget {
			t.Fatalf("encoded %d bytes, budget %d", len(d.enc), budget)
		}
		if len(d.enc) > bound {
			t.Fatalf("encoded %d bytes, above the last bound %d", len(d.enc), bound)
		}
		kinds, _ := deltaStream(t, d.enc)
		raw := true
		for _, k := range kinds {
			raw = raw && k == blockRaw
		}
		if raw && len(d.enc) != bound {
			t.Fatalf("nothing compressed, yet encoded %d bytes where the bound was %d", len(d.enc), bound)
		}
		got := decodeDeltaBytes(t, d.enc)
		if diff := gocmp.Diff(d.Nodes, got.Nodes, cmpOpts); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
		// The message forms, with the cached encoding and with a fresh one
		// (a decoded delta forwarded, as a push is).
		for _, delta := range []Delta{d, {Nodes: got.Nodes}} {
			for _, m := range []Message{&Ack{Delta: delta}, &Push{ClusterID: "c", Range: &RingRange{Upto: 1<<40 | 0xffff_ffff, AfterRecipient: true}, Delta: delta}} {
				b := EncodeMessage(m)
				if n := EncodedSize(m); n != len(b) {
					t.Fatalf("EncodedSize(%v) = %d, encoding is %d bytes", m.Type(), n, len(b))
				}
				if len(b) > envelopeSize && !bytes.Equal(b, EncodeMessage(wireNoTB(t, b))) {
					t.Fatalf("%v does not re-encode to the same bytes", m.Type())
				}
			}
		}
	})
}

// wireNoTB decodes b, failing t.
func wireNoTB(t *rapid.T, b []byte) Message {
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatalf("DecodeMessage: %v", err)
	}
	return m
}

// vmihailenco's decoder reads every form the writer produces at the
// boundaries where the form changes: bare bin8/bin16, the first stream
// that is framed (blockThreshold), compressed lone blocks just above
// minCompressSize and those whose framing would cost more than bare.
func TestHostile5OracleReadsEveryForm(t *testing.T) {
	r := testRand(t, 55)
	node := sizeNodeOp(id(1), 0, 0)
	kvOver := sizeKVOp("k", "", 1) // the op's bytes besides the value
	type form struct {
		name   string
		stream int // total op bytes
		value  func(n int) string
	}
	var forms []form
	for _, s := range []int{minCompressSize - 1, minCompressSize, minCompressSize + 1, 253, 254, 255, 256, 257, 4096, blockThreshold - 1, blockThreshold, blockThreshold + 1, 2*blockThreshold + 7} {
		forms = append(forms,
			form{fmt.Sprintf("random %d", s), s, func(n int) string { return hostile5ASCII(r, n) }},
			form{fmt.Sprintf("repeated %d", s), s, func(n int) string { return strings.Repeat("z", n) }},
			form{fmt.Sprintf("alnum %d", s), s, func(n int) string { return alnum(r, n) }})
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			n := f.stream - node - kvOver
			if n < 0 {
				t.Skip("stream too small for a key-value")
			}
			v := f.value(n)
			// sizeKVOp's string header grows with the value: trim to the
			// exact stream size.
			for n > 0 && node+sizeKVOp("k", v[:n], 1) > f.stream {
				n--
			}
			v = v[:n]
			budget := deltaBound(node + sizeKVOp("k", v, 1))
			w := newDeltaWriter(budget)
			if !tryNode(w, id(1), 0, 0) || !tryKV(w, kv("k", v, 1, StatusSet)) {
				t.Fatalf("ops of %d bytes do not fit their own bound %d", node+sizeKVOp("k", v, 1), budget)
			}
			d := w.finish()
			if len(d.enc) > budget {
				t.Fatalf("encoded %d bytes, budget %d", len(d.enc), budget)
			}
			got := genericDelta(t, generic(t, d.enc)[0])
			want := []NodeDelta{{ID: id(1), KeyValues: []KeyValueMutation{kv("k", v, 1, StatusSet)}, MaxVersion: 1}}
			if diff := gocmp.Diff(want, got, cmpOpts); diff != "" {
				t.Fatalf("vmihailenco reads (-want +got):\n%s", diff)
			}
			kinds, _ := deltaStream(t, d.enc)
			t.Logf("stream %d bytes: %d encoded, first byte %#x, block kinds %v", node+sizeKVOp("k", v, 1), len(d.enc), d.enc[0], kinds)
		})
	}
}

// The decoder's bare form: any bin width, never empty, never above the
// stream cap (UDP's or a stream's larger one), a length beyond the datagram
// refused without allocating, and the bytes after it still parsed as the
// rest of the message.
func TestHostile5BareDeltaDecoding(t *testing.T) {
	d := buildDelta([]NodeDelta{{ID: id(1), KeyValues: []KeyValueMutation{kv("k", "v", 1, StatusSet)}, MaxVersion: 1}})
	_, ops := deltaStream(t, d.enc)
	if d.enc[0] != mpBin8 {
		t.Fatalf("a small delta encodes as %#x, want a bare bin8", d.enc[0])
	}
	bin := func(code byte, n int, data []byte) []byte {
		b := []byte{code}
		switch code {
		case mpBin8:
			b = append(b, byte(n))
		case mpBin16:
			b = append(b, byte(n>>8), byte(n))
		case mpBin32:
			b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		}
		return append(b, data...)
	}
	ack := func(delta []byte) []byte {
		b := EncodeMessage(&Ack{})
		return append(b[:len(b)-1], delta...) // the empty delta is the last byte
	}
	tests := []struct {
		name      string
		b         []byte
		maxStream int
		wantErr   string // "" decodes to d's nodes
	}{
		{name: "bin8", b: ack(bin(mpBin8, len(ops), ops))},
		{name: "bin16 of a small stream", b: ack(bin(mpBin16, len(ops), ops))},
		{name: "bin32 of a small stream", b: ack(bin(mpBin32, len(ops), ops))},
		{name: "empty bin8", b: ack(bin(mpBin8, 0, nil)), wantErr: "empty bin"},
		{name: "empty bin16", b: ack(bin(mpBin16, 0, nil)), wantErr: "empty bin"},
		{name: "empty bin32", b: ack(bin(mpBin32, 0, nil)), wantErr: "empty bin"},
		{name: "bin32 longer than the datagram", b: ack(bin(mpBin32, 1<<32-1, ops)), wantErr: "truncated"},
		{name: "bin16 one byte short", b: ack(bin(mpBin16, len(ops)+1, ops)), wantErr: "truncated"},
		{name: "above the stream cap", b: ack(bin(mpBin8, len(ops), ops)), maxStream: len(ops) - 1, wantErr: "too large"},
		{name: "at the stream cap", b: ack(bin(mpBin8, len(ops), ops)), maxStream: len(ops)},
		{name: "trailing byte", b: append(ack(bin(mpBin8, len(ops), ops)), 0), wantErr: "trailing"},
		{name: "ops cut in the middle", b: ack(bin(mpBin8, len(ops)-1, ops[:len(ops)-1])), wantErr: "op stream"},
		{name: "a block, bare", b: ack(bin(mpBin8, 4, []byte{0x92, blockRaw, mpBin8, 0})), wantErr: "op stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxStream := cmp.Or(tt.maxStream, maxDeltaStream)
			m, err := decodeMessage(tt.b, maxStream)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := gocmp.Diff(d.Nodes, m.(*Ack).Delta.Nodes, cmpOpts); diff != "" {
				t.Fatalf("nodes (-want +got):\n%s", diff)
			}
		})
	}
}

// A kept death notice (deathHeard) holds "until the node's heartbeat
// rises". A reset of the node's state (a delta whose LastGCVersion is above
// our view: an owner's GC we missed) sets our heartbeat to 0, and the next
// heartbeat we hear is a baseline, not a rise, even when it is above the
// notice's: the notice survived it, and killed the node at half the
// threshold although we had heard of it past the notice's heartbeat. A
// notice of that heartbeat arriving then would have been ignored (our
// heartbeat is above it): the reset made a stale notice lethal.
func TestHostile5KeptDeathNoticeSurvivesAReset(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset %v", reset), func(t *testing.T) {
			p := livePushNet(t, 4, nil)
			e, y, x := p.engines[0], p.engines[1], p.engines[3]
			ns := e.node(x.Self())
			hb := ns.heartbeat
			dead := &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeDead, ID: x.Self(), Heartbeat: hb}}}
			e.Step(p.now, Inbound{}, wire(t, dead))
			if !isLive(e, x.Self()) || !ns.deathHeard {
				t.Fatalf("live %v, deathHeard %v after a notice at low phi: want the notice kept", isLive(e, x.Self()), ns.deathHeard)
			}
			if reset {
				gc := max(ns.maxVersion, ns.lastGCVersion) + 1
				ack := &Ack{Delta: Delta{Nodes: []NodeDelta{{ID: x.Self(), LastGCVersion: gc, MaxVersion: gc}}}}
				e.Step(p.now, Inbound{From: y.Self().Addr}, wire(t, ack))
				if ns.heartbeat != 0 {
					t.Fatalf("heartbeat %d after the reset, want 0", ns.heartbeat)
				}
			}
			// A third party's digest: x's heartbeat past the notice's.
			syn := &Syn{ClusterID: "default-cluster", Digest: Digest{
				{ID: x.Self(), NodeDigest: NodeDigest{Heartbeat: hb + 2, LastGCVersion: ns.lastGCVersion, MaxVersion: ns.maxVersion}},
			}}
			e.Step(p.now.Add(time.Second), Inbound{From: y.Self().Addr}, wire(t, syn))
			if ns.heartbeat != hb+2 {
				t.Fatalf("heartbeat %d after the digest, want %d", ns.heartbeat, hb+2)
			}
			// Past half the threshold (no rise fed the detector after a
			// reset), short of the threshold itself.
			later := p.now.Add(5500 * time.Millisecond)
			phi, _ := e.fd.Phi(ns.slot, later)
			e.UpdateLiveness(later)
			if !isLive(e, x.Self()) {
				t.Errorf("x dead at phi %.1f (threshold %.1f): a death notice at heartbeat %d applied after we heard heartbeat %d",
					phi, e.cfg.FailureDetector.PhiThreshold, hb, ns.heartbeat)
			}
		})
	}
}

// A push routed to a node's previous identity (the sender has not yet
// found it dead: a restart, or a reincarnation a forger forced, at the same
// address) reaches the new identity, whose own ring position starts the
// duty (RingRange.AfterRecipient). With the duty sent in full it forwarded
// the old chunk; from its new position the range wraps around the ring
// whenever that position is past the chunk's end, and inside that range
// the stale identity is reached again, with another wrapped range: a
// cascade. Measured at N = 60, six nodes restarting in turn (3, 7, 20, 31,
// 44, 58), over the 59 writes of the other nodes while the old identity is
// still live everywhere: 59.0 to 85.0 datagrams per write (N − 1 = 59),
// worst 154 (2.6 × N − 1); the new identity received one write up to 3
// times. At 745b531 (the duty sent in full), the same runs cost exactly
// 59 per write. (The check "a chunk never holds its sender" does not fix it: the
// origin's rotated trees (PushRedundancy > 1) and a seed's forwards of a
// whole-ring duty send chunks that wrap past the sender.) Fixed by the
// short range's tag: a recipient that is not the node it names forwards
// nothing. Without that check this test fails (up to 107 datagrams per
// write, 32 of 59 writes reaching the restarted node more than once).
func TestHostile5MisroutedDutyAmplification(t *testing.T) {
	heavy(t)
	const n = 60
	for _, k := range []int{3, 20, 58} {
		t.Run(fmt.Sprintf("node %d restarts", k), func(t *testing.T) {
			c, worst := misroutedDuty(t, n, k)
			if c > 0 {
				t.Errorf("%d writes reached the restarted node more than once: a cascade of wrapped duties", c)
			}
			if worst > n-1 {
				t.Errorf("a write cost %d datagrams, above the N-1 = %d of one push tree", worst, n-1)
			}
		})
	}
}

// misroutedDuty reincarnates node k of a live cluster of n, has every other
// node write once, and returns how many writes reached k more than once and
// the largest number of datagrams a write cost.
func misroutedDuty(t *testing.T, n, k int) (cascades, worst int) {
	p := livePushNet(t, n, nil)
	r := p.engines[k]
	old := r.Self()
	r.reincarnate(p.now, r.selfState().heartbeat)
	if r.Self() == old {
		t.Fatal("no reincarnation")
	}
	total := 0
	for i, o := range p.engines {
		if o == r {
			continue
		}
		p.now = p.now.Add(time.Second) // tokens refill
		p.received = map[*Engine]int{}
		if err := o.Set("k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		p.deliver(o, o.Flush(p.now), 1)
		got := 0
		for _, c := range p.received {
			got += c
		}
		total += got
		worst = max(worst, got)
		if p.received[r] > 1 {
			cascades++
		}
	}
	t.Logf("%d writes: %d datagrams (%.1f per write, N-1 = %d), worst %d, %d writes reached the restarted node more than once",
		n-1, total, float64(total)/float64(n-1), n-1, worst, cascades)
	return cascades, worst
}
