package chitchat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/vmihailenco/msgpack/v5"
)

// Interoperability of the hand-written msgpack codec (msgpack.go) with
// github.com/vmihailenco/msgpack/v5, both ways: what we encode is standard
// msgpack with the documented structure (codec.go, deltacodec.go), and what
// another encoder writes, whatever integer widths it picks, decodes.

// generic decodes every msgpack value of b with vmihailenco's generic
// decoder, failing on trailing garbage.
func generic(tb testing.TB, b []byte) []any {
	tb.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	var out []any
	for {
		v, err := dec.DecodeInterface()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("vmihailenco cannot decode % x: %v", b, err)
		}
		out = append(out, v)
	}
}

// u64 converts a generically decoded integer.
func u64(tb testing.TB, v any) uint64 {
	tb.Helper()
	switch n := v.(type) {
	case int8:
		return uint64(n)
	case int16:
		return uint64(n)
	case int32:
		return uint64(n)
	case int64:
		return uint64(n)
	case uint8:
		return uint64(n)
	case uint16:
		return uint64(n)
	case uint32:
		return uint64(n)
	case uint64:
		return n
	}
	tb.Fatalf("%#v is not an integer", v)
	return 0
}

func array(tb testing.TB, v any, n int) []any {
	tb.Helper()
	a, ok := v.([]any)
	if !ok || (n >= 0 && len(a) != n) {
		tb.Fatalf("%#v is not an array of %d elements", v, n)
	}
	return a
}

// genericID checks name, generation, address bytes.
func genericID(tb testing.TB, fields []any, want NodeID) {
	tb.Helper()
	addr := fields[2].([]byte)
	var ip netip.Addr
	if len(addr) == 6 {
		ip = netip.AddrFrom4([4]byte(addr[:4]))
	} else {
		ip = netip.AddrFrom16([16]byte(addr[:16]))
	}
	got := NodeID{Name: fields[0].(string), Generation: u64(tb, fields[1]), Addr: netip.AddrPortFrom(ip, uint16(addr[len(addr)-2])<<8|uint16(addr[len(addr)-1]))}
	if got != want {
		tb.Fatalf("id = %v, want %v", got, want)
	}
}

// genericSender checks the sender index against the digest.
func genericSender(tb testing.TB, v any, d Digest, want NodeID) {
	tb.Helper()
	idx := u64(tb, v)
	var got NodeID
	if idx > 0 {
		got = d[idx-1].ID
	}
	if got != want {
		tb.Fatalf("sender index %d names %v, want %v", idx, got, want)
	}
}

// genericCoverage decodes a coverage with vmihailenco's generic decoder and
// its summaries blob by hand, from the format's description.
func genericCoverage(tb testing.TB, v any, want *Coverage) {
	tb.Helper()
	if want == nil {
		if v != nil {
			tb.Fatalf("coverage = %v, want nil", v)
		}
		return
	}
	f := array(tb, v, 4)
	got := &Coverage{Bits: uint8(u64(tb, f[0])), First: uint32(u64(tb, f[1])), Count: uint32(u64(tb, f[2]))}
	blob := f[3].([]byte)
	for len(blob) > 0 {
		o, n := binary.Uvarint(blob)
		blob = blob[n:]
		k, n := binary.Uvarint(blob)
		blob = blob[n:]
		s := BucketSummary{Bucket: (got.First + uint32(o)) & (1<<got.Bits - 1), Hash: binary.LittleEndian.Uint64(blob)}
		blob = blob[8:]
		for range k {
			s.Heartbeats = append(s.Heartbeats, binary.BigEndian.Uint16(blob))
			blob = blob[2:]
		}
		got.Summaries = append(got.Summaries, s)
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		tb.Fatalf("coverage mismatch (-ours +decoded):\n%s", diff)
	}
}

func genericDigest(tb testing.TB, v any, want Digest) {
	tb.Helper()
	entries := array(tb, v, len(want))
	for i, e := range entries {
		f := array(tb, e, 6)
		genericID(tb, f, want[i].ID)
		got := NodeDigest{Heartbeat: u64(tb, f[3]), LastGCVersion: u64(tb, f[4]), MaxVersion: u64(tb, f[5])}
		if got != want[i].NodeDigest {
			tb.Fatalf("entry %d = %+v, want %+v", i, got, want[i].NodeDigest)
		}
	}
}

// genericDelta decodes the blocks with vmihailenco (zstd blocks with a
// plain zstd decoder) and rebuilds the node deltas from the ops.
func genericDelta(tb testing.TB, v any) []NodeDelta {
	tb.Helper()
	var stream []byte
	blocks := []any{}
	if bare, ok := v.([]byte); ok {
		stream = bare // one raw block, unframed
	} else {
		blocks = array(tb, v, -1)
	}
	for _, blk := range blocks {
		f := array(tb, blk, 2)
		data := f[1].([]byte)
		switch u64(tb, f[0]) {
		case blockRaw:
		case blockZstd:
			dec, err := zstd.NewReader(nil)
			if err != nil {
				tb.Fatal(err)
			}
			if data, err = dec.DecodeAll(data, nil); err != nil {
				tb.Fatalf("zstd block: %v", err)
			}
			dec.Close()
		default:
			tb.Fatalf("block kind %v", f[0])
		}
		stream = append(stream, data...)
	}
	var nodes []NodeDelta
	for _, op := range generic(tb, stream) {
		f := array(tb, op, -1)
		switch u64(tb, f[0]) {
		case opNode:
			f = array(tb, op, 6)
			addr := f[3].([]byte)
			nodes = append(nodes, NodeDelta{
				ID:                  NodeID{Name: f[1].(string), Generation: u64(tb, f[2]), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), uint16(addr[4])<<8|uint16(addr[5]))},
				LastGCVersion:       u64(tb, f[4]),
				FromVersionExcluded: u64(tb, f[5]),
			})
		case opNodeRef:
			f = array(tb, op, 4)
			nodes = append(nodes, NodeDelta{Ref: u64(tb, f[1]), LastGCVersion: u64(tb, f[2]), FromVersionExcluded: u64(tb, f[3])})
		case opKV:
			f = array(tb, op, 5)
			nd := &nodes[len(nodes)-1]
			m := kv(f[1].(string), f[2].(string), u64(tb, f[3]), Status(u64(tb, f[4])))
			nd.KeyValues = append(nd.KeyValues, m)
			nd.MaxVersion = m.Version
		case opMax:
			nodes[len(nodes)-1].MaxVersion = u64(tb, array(tb, op, 2)[1])
		}
	}
	return nodes
}

func TestInteropOurEncodingIsStandardMsgpack(t *testing.T) {
	for i, m := range seedMessages() {
		t.Run(fmt.Sprintf("%v %d", m.Type(), i), func(t *testing.T) {
			b := AppendMessage(nil, m)
			if !bytes.Equal(b[:envelopeSize], envelope(m.Type())) {
				t.Fatalf("envelope % x", b[:envelopeSize])
			}
			body := generic(t, b[envelopeSize:])
			if _, ok := m.(*BadCluster); ok {
				if len(body) != 0 {
					t.Fatalf("BadCluster body = %v, want none", body)
				}
				return
			}
			if len(body) != 1 {
				t.Fatalf("body holds %d values, want 1", len(body))
			}
			switch m := m.(type) {
			case *Syn:
				f := array(t, body[0], 5)
				if f[0].(string) != m.ClusterID {
					t.Errorf("cluster id = %v", f[0])
				}
				genericDigest(t, f[1], m.Digest)
				genericSender(t, f[2], m.Digest, m.Sender)
				genericCoverage(t, f[3], m.Cover)
				if pad, _ := f[4].([]byte); len(pad) != m.Pad {
					t.Errorf("padding of %d bytes, want %d", len(pad), m.Pad)
				}
			case *SynAck:
				f := array(t, body[0], 4)
				genericDigest(t, f[0], m.Digest)
				genericSender(t, f[1], m.Digest, m.Sender)
				genericCoverage(t, f[2], m.Cover)
				if diff := cmp.Diff(m.Delta.Nodes, genericDelta(t, f[3]), cmpOpts); diff != "" {
					t.Errorf("delta mismatch (-ours +vmihailenco):\n%s", diff)
				}
			case *Push:
				f := array(t, body[0], 4)
				if f[0].(string) != m.ClusterID {
					t.Errorf("cluster id = %v", f[0])
				}
				if m.Range == nil {
					if f[1] != nil {
						t.Errorf("range = %v, want nil", f[1])
					}
				} else if m.Range.AfterRecipient {
					if u64(t, f[1]) != m.Range.Upto>>32 {
						t.Errorf("range = %v, want %+v", f[1], *m.Range)
					}
				} else if r := array(t, f[1], 2); u64(t, r[0]) != m.Range.After>>32 || u64(t, r[1]) != m.Range.Upto>>32 {
					t.Errorf("range = %v, want %+v", r, *m.Range)
				}
				notices := array(t, f[2], len(m.Notices))
				for i, n := range notices {
					nf := array(t, n, 5)
					if NoticeKind(u64(t, nf[0])) != m.Notices[i].Kind || u64(t, nf[4]) != m.Notices[i].Heartbeat {
						t.Errorf("notice %d = %v, want %+v", i, nf, m.Notices[i])
					}
					genericID(t, nf[1:4], m.Notices[i].ID)
				}
				if diff := cmp.Diff(m.Delta.Nodes, genericDelta(t, f[3]), cmpOpts); diff != "" {
					t.Errorf("delta mismatch (-ours +vmihailenco):\n%s", diff)
				}
			case *Ack:
				f := array(t, body[0], 1)
				if diff := cmp.Diff(m.Delta.Nodes, genericDelta(t, f[0]), cmpOpts); diff != "" {
					t.Errorf("delta mismatch (-ours +vmihailenco):\n%s", diff)
				}
			}
		})
	}
}

// foreign builds a message body with vmihailenco's encoder.
type foreign struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

func newForeign(t MessageType) *foreign {
	f := &foreign{}
	f.buf.Write(envelope(t))
	f.enc = msgpack.NewEncoder(&f.buf)
	return f
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// id writes a node id's three fields with deliberately wide integers.
func (f *foreign) id(tb testing.TB, id NodeID) {
	tb.Helper()
	must(tb, f.enc.EncodeString(id.Name))
	must(tb, f.enc.EncodeUint64(id.Generation))
	a := id.Addr.Addr().As4()
	must(tb, f.enc.EncodeBytes(append(a[:], byte(id.Addr.Port()>>8), byte(id.Addr.Port()))))
}

func TestInteropForeignEncodingDecodes(t *testing.T) {
	long := strings.Repeat("é", 40) // str8
	t.Run("syn", func(t *testing.T) {
		f := newForeign(TypeSyn)
		must(t, f.enc.EncodeArrayLen(5))
		must(t, f.enc.EncodeString(long))
		must(t, f.enc.EncodeArrayLen(2))
		// Entries out of order: the decoder sorts them.
		for _, e := range []struct {
			id         NodeID
			hb, gc, mx uint64
		}{{id(10002), 300, 2, 70000}, {id(10001), 1, 0, 5}} {
			must(t, f.enc.EncodeArrayLen(6))
			f.id(t, e.id)
			must(t, f.enc.EncodeUint16(uint16(e.hb)))
			must(t, f.enc.EncodeInt64(int64(e.gc))) // signed, non-negative
			must(t, f.enc.EncodeUint(e.mx))
		}
		must(t, f.enc.EncodeUint64(1)) // the sender is the first entry on the wire
		must(t, f.enc.EncodeArrayLen(4))
		must(t, f.enc.EncodeUint16(2))
		must(t, f.enc.EncodeInt32(1))
		must(t, f.enc.EncodeUint(2))
		blob := binary.AppendUvarint(nil, 1)
		blob = binary.AppendUvarint(blob, 1)
		blob = binary.LittleEndian.AppendUint64(blob, 42)
		blob = binary.BigEndian.AppendUint16(blob, 9)
		must(t, f.enc.EncodeBytes(blob))
		must(t, f.enc.EncodeNil())
		want := &Syn{ClusterID: long, Digest: Digest{
			{ID: id(10001), NodeDigest: NodeDigest{Heartbeat: 1, MaxVersion: 5}},
			{ID: id(10002), NodeDigest: NodeDigest{Heartbeat: 300, LastGCVersion: 2, MaxVersion: 70000}},
		}, Sender: id(10002), Cover: &Coverage{Bits: 2, First: 1, Count: 2, Summaries: []BucketSummary{{Bucket: 2, Hash: 42, Heartbeats: []uint16{9}}}}}
		got, err := DecodeMessage(f.buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	for _, form := range []string{"raw block", "zstd block", "bare bin"} {
		compress := form == "zstd block"
		t.Run("ack "+form, func(t *testing.T) {
			var ops bytes.Buffer
			enc := msgpack.NewEncoder(&ops)
			must(t, enc.EncodeArrayLen(6))
			must(t, enc.EncodeUint8(opNode))
			tmp := &foreign{enc: enc}
			tmp.id(t, id(10001))
			must(t, enc.EncodeUint32(3))
			must(t, enc.EncodeInt8(1))
			for i, v := range []uint64{2, 300, 1 << 20} {
				must(t, enc.EncodeArrayLen(5))
				must(t, enc.EncodeInt16(opKV))
				must(t, enc.EncodeString("key"+string(rune('a'+i))))
				must(t, enc.EncodeString(long))
				must(t, enc.EncodeUint64(v))
				must(t, enc.EncodeUint8(uint8(i)))
			}
			must(t, enc.EncodeArrayLen(6))
			must(t, enc.EncodeUint(opNode))
			tmp.id(t, id(10002))
			must(t, enc.EncodeUint(0))
			must(t, enc.EncodeUint(0))
			must(t, enc.EncodeArrayLen(2))
			must(t, enc.EncodeUint(opMax))
			must(t, enc.EncodeUint64(9))
			data, kind := ops.Bytes(), uint64(blockRaw)
			if compress {
				zenc, err := zstd.NewWriter(nil)
				must(t, err)
				data, kind = zenc.EncodeAll(data, nil), blockZstd
			}
			f := newForeign(TypeAck)
			must(t, f.enc.EncodeArrayLen(1))
			if form == "bare bin" {
				must(t, f.enc.EncodeBytes(data)) // one raw block, unframed
			} else {
				must(t, f.enc.EncodeArrayLen(1))
				must(t, f.enc.EncodeArrayLen(2))
				must(t, f.enc.EncodeUint(kind))
				must(t, f.enc.EncodeBytes(data))
			}
			want := &Ack{Delta: Delta{Nodes: []NodeDelta{
				{ID: id(10001), LastGCVersion: 3, FromVersionExcluded: 1, MaxVersion: 1 << 20, KeyValues: []KeyValueMutation{
					kv("keya", long, 2, StatusSet), kv("keyb", long, 300, StatusDeleted), kv("keyc", long, 1<<20, StatusDeleteAfterTTL),
				}},
				{ID: id(10002), MaxVersion: 9},
			}}}
			got, err := DecodeMessage(f.buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
