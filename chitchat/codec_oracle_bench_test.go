package chitchat

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
)

// Why the wire codec is written by hand (docs/PROTOCOL.md §12): the digest
// codec of msgpack.go and codec.go against the same digest encoded and
// decoded with github.com/vmihailenco/msgpack/v5's streaming API, the
// fastest way to use that library (no reflection). The library stays the
// oracle of the codec (interop_test.go); it never decodes untrusted bytes.
//
//	go test -run '^$' -bench 'DigestCodec|Handshake/nodes=1000' -benchmem ./chitchat/

// oracleDigestSize is the number of entries of the benchmarked digest.
const oracleDigestSize = 1000

// oracleDigest returns the digest a node of a 1,000-node cluster sends:
// names node_i on 127.0.0.1:10000+i, heartbeats in the hundreds, ten keys
// each (the sizes of BenchmarkHandshake).
func oracleDigest(tb testing.TB) Digest {
	tb.Helper()
	d := make(Digest, oracleDigestSize)
	for i := range d {
		d[i] = DigestEntry{ID: benchID(i), NodeDigest: NodeDigest{Heartbeat: uint64(100 + i%400), MaxVersion: 10}}
	}
	return d.normalize()
}

// oracleEncodeDigest writes d as appendDigest does, with the library's
// streaming encoder.
func oracleEncodeDigest(enc *msgpack.Encoder, d Digest) error {
	if err := enc.EncodeArrayLen(len(d)); err != nil {
		return err
	}
	var addr [18]byte
	for i := range d {
		e := &d[i]
		ip := e.ID.Addr.Addr()
		var a []byte
		if ip.Is4() {
			v4 := ip.As4()
			a = append(append(addr[:0], v4[:]...), byte(e.ID.Addr.Port()>>8), byte(e.ID.Addr.Port()))
		} else {
			v6 := ip.As16()
			a = append(append(addr[:0], v6[:]...), byte(e.ID.Addr.Port()>>8), byte(e.ID.Addr.Port()))
		}
		for _, err := range []error{
			enc.EncodeArrayLen(6),
			enc.EncodeString(e.ID.Name),
			enc.EncodeUint(e.ID.Generation),
			enc.EncodeBytes(a),
			enc.EncodeUint(e.Heartbeat),
			enc.EncodeUint(e.LastGCVersion),
			enc.EncodeUint(e.MaxVersion),
		} {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// oracleDecodeDigest reads a digest with the library's streaming decoder,
// checking what decodeDigest checks but the count against the input (the
// library does not know how much input is left).
func oracleDecodeDigest(dec *msgpack.Decoder) (Digest, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	d := make(Digest, n)
	for i := range d {
		e := &d[i]
		if m, err := dec.DecodeArrayLen(); err != nil || m != 6 {
			return nil, fmt.Errorf("digest entry: %d fields, %v", m, err)
		}
		if e.ID.Name, err = dec.DecodeString(); err != nil {
			return nil, err
		}
		if e.ID.Generation, err = dec.DecodeUint64(); err != nil {
			return nil, err
		}
		a, err := dec.DecodeBytes()
		if err != nil {
			return nil, err
		}
		switch len(a) {
		case 6:
			e.ID.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a)), uint16(a[4])<<8|uint16(a[5]))
		case 18:
			e.ID.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a)).Unmap(), uint16(a[16])<<8|uint16(a[17]))
		default:
			return nil, fmt.Errorf("address of %d bytes", len(a))
		}
		for _, v := range []*uint64{&e.Heartbeat, &e.LastGCVersion, &e.MaxVersion} {
			if *v, err = dec.DecodeUint64(); err != nil {
				return nil, err
			}
		}
	}
	return d.normalize(), nil
}

// The two codecs do the same work: the library writes our bytes exactly,
// and both read them back to the same digest. Without this the benchmark
// below would compare different things.
func TestOracleDigestCodecAgrees(t *testing.T) {
	d := oracleDigest(t)
	ours := appendDigest(nil, d)
	var buf bytes.Buffer
	if err := oracleEncodeDigest(msgpack.NewEncoder(&buf), d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), ours) {
		t.Fatalf("the library's encoding (%d bytes) differs from ours (%d bytes)", buf.Len(), len(ours))
	}
	got, err := oracleDecodeDigest(msgpack.NewDecoder(bytes.NewReader(ours)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got, cmpOpts); diff != "" {
		t.Errorf("the library's decoding mismatch (-want +got):\n%s", diff)
	}
	r := &reader{b: ours}
	mine, err := decodeDigest(r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, mine, cmpOpts); diff != "" {
		t.Errorf("decodeDigest mismatch (-want +got):\n%s", diff)
	}
}

// BenchmarkDigestCodec encodes and decodes a 1,000-entry digest with each
// codec. A handshake encodes two digests (Syn, SynAck) and decodes two, so
// the library's extra cost per handshake is twice the sum of the encode and
// decode differences; BenchmarkHandshake/nodes=1000 is the whole handshake.
func BenchmarkDigestCodec(b *testing.B) {
	d := oracleDigest(b)
	enc := appendDigest(nil, d)
	b.Run("encode/hand", func(b *testing.B) {
		buf := make([]byte, 0, len(enc))
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			buf = appendDigest(buf[:0], d)
		}
	})
	b.Run("encode/msgpack", func(b *testing.B) {
		var buf bytes.Buffer
		buf.Grow(len(enc))
		e := msgpack.NewEncoder(&buf)
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			buf.Reset()
			if err := oracleEncodeDigest(e, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := decodeDigest(&reader{b: enc}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/msgpack", func(b *testing.B) {
		r := bytes.NewReader(enc)
		dec := msgpack.NewDecoder(r)
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			r.Reset(enc)
			dec.Reset(r)
			if _, err := oracleDecodeDigest(dec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// hostileSyn is a 19-byte Syn whose digest claims 2^32−1 entries: the
// envelope, a 2-field array, the cluster id "example", then an array32
// header and one byte of a first entry.
var hostileSyn = []byte{
	magic0, magic1, protocolVersion, byte(TypeSyn),
	mpFixArray | 5,
	mpFixStr | 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
	mpArray32, 0xff, 0xff, 0xff, 0xff,
	mpFixArray | 6,
}

// Our decoder checks a count against the bytes left before it allocates:
// the hostile Syn is refused with a clear error, and decoding it allocates
// a few hundred bytes (the cluster id and the error), not 2^32−1 entries.
func TestHostileDigestCountRefused(t *testing.T) {
	const want = "chitchat: decode at offset 18: digest: 4294967295 elements: truncated input"
	_, err := DecodeMessage(hostileSyn)
	if err == nil || err.Error() != want {
		t.Fatalf("DecodeMessage(hostile Syn) = %v, want %q", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, errTruncated) {
		t.Errorf("error %v is not a *DecodeError wrapping errTruncated", err)
	}
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		DecodeMessage(hostileSyn)
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 512 {
		t.Errorf("decoding the hostile Syn allocates %d bytes, want at most 512 (the cluster id and the error)", perRun)
	}
}

// The library's streaming decoder hands the caller the claimed count
// without checking it against the input: a caller that allocates for it, as
// the library's own Decode into a slice does (v5.4.1's one-million-element
// cap never applies: vmihailenco/msgpack issue #401), asks for 2^32−1
// entries from a 19-byte datagram. codec_oracle_limit_linux_test.go runs
// that Decode in a memory-limited subprocess.
func TestOracleTrustsHostileCount(t *testing.T) {
	dec := msgpack.NewDecoder(bytes.NewReader(hostileSyn[envelopeSize:]))
	if n, err := dec.DecodeArrayLen(); n != 5 || err != nil {
		t.Fatalf("Syn header = %d, %v; want 5 fields", n, err)
	}
	if _, err := dec.DecodeString(); err != nil {
		t.Fatal(err)
	}
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 1<<32-1 {
		t.Fatalf("DecodeArrayLen = %d, %v; want 4294967295 and no error (the library does not check counts)", n, err)
	}
}
