package chitchat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Native fuzz targets for the three decoders (docs/PROTOCOL.md §11.12): the datagram
// decoder, the delta op-stream parser and the digest decoder. Each must never
// panic, report failures as *DecodeError, and, when it accepts an input,
// re-encode it to something that decodes to the same value. Seeds are the
// encodings of the table cases of codec_test.go, deltacodec_test.go and a few
// handshakes, plus the hostile inputs of the allocation tests.
//
// Run one with: go test -run=^$ -fuzz=FuzzDecodeMessage -fuzztime=20s ./chitchat/

// seedMessages are well-formed messages covering every message type, both
// block kinds and the digest/delta corner cases.
func seedMessages() []Message {
	oneEntry := Digest{{ID: id(10001)}}
	big := Digest{
		{ID: NodeID{Name: strings.Repeat("n", 40), Generation: 1 << 40, Addr: id(1).Addr}, NodeDigest: NodeDigest{Heartbeat: 1 << 33, LastGCVersion: 300, MaxVersion: 70000}},
		{ID: NodeID{Name: "v6", Addr: netip.MustParseAddrPort("[2001:db8::1]:9")}, NodeDigest: NodeDigest{Heartbeat: 1}},
	}
	var sentences []string
	for i := range 200 {
		sentences = append(sentences, tenSentences[i%10])
	}
	compressed := valuesDelta(sentences)
	return []Message{
		&Syn{ClusterID: "cluster-a"},
		&Syn{ClusterID: "cluster-a", Digest: oneEntry},
		&Syn{ClusterID: "", Digest: big},
		&SynAck{},
		&SynAck{Digest: oneEntry, Delta: upstreamDelta()},
		&SynAck{Digest: big, Delta: Delta{Nodes: []NodeDelta{{ID: id(10001), LastGCVersion: 80, FromVersionExcluded: 50, MaxVersion: 100}}}},
		&Ack{},
		&Ack{Delta: upstreamDelta()},
		&Ack{Delta: compressed},
		&BadCluster{},
		// Protocol v1: sender, coverage with summaries, padding, push.
		&Syn{ClusterID: "cluster-a", Digest: big, Sender: big[1].ID, Pad: 40, Cover: &Coverage{Bits: 3, First: 6, Count: 4, Summaries: []BucketSummary{
			{Bucket: 7, Hash: 0xdeadbeefcafe, Heartbeats: []uint16{1, 65535, 300}}, {Bucket: 1, Hash: 1}}}},
		&Syn{ClusterID: "c", Digest: oneEntry, Sender: id(10001), Cover: &Coverage{Count: 1}},
		&SynAck{Digest: big, Sender: big[0].ID, Cover: &Coverage{Bits: 20, First: 1<<20 - 1, Count: 1 << 20, Summaries: []BucketSummary{{Bucket: 3, Heartbeats: []uint16{7}}}},
			Delta: upstreamDelta()},
		&Push{ClusterID: "cluster-a"},
		&Push{ClusterID: "cluster-a", Range: &RingRange{After: 1 << 63, Upto: 5}, Notices: []Notice{
			{Kind: NoticeAlive, ID: big[0].ID, Heartbeat: 1 << 40}, {Kind: NoticeDead, ID: big[1].ID, Heartbeat: 3}}, Delta: upstreamDelta()},
		&Push{ClusterID: "cluster-a", Range: &RingRange{Upto: 1<<40 | 0xffff_ffff, AfterRecipient: true}, Delta: upstreamDelta()},
	}
}

// seedDatagrams returns the datagrams the fuzz targets start from: the seed
// messages, messages of real handshakes, and hostile inputs.
func seedDatagrams(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, m := range seedMessages() {
		out = append(out, EncodeMessage(m))
	}
	a := newEngine(tb, forTest(1), KeyValue{"a", "1"}, KeyValue{"b", strings.Repeat("x", 300)})
	b := newEngine(tb, forTest(2), KeyValue{"c", "3"})
	b.Delete(t0, "c")
	syn := a.CreateSyn(t0)
	synAck := b.Process(t0, syn)
	ack := a.Process(t0, synAck)
	out = append(out, EncodeMessage(syn), EncodeMessage(synAck), EncodeMessage(ack))
	out = append(out,
		ackOf(rawDelta(nodeOp(id(1), 0, 0), maxOp(5))),
		ackOf(rawDelta(nodeOp(id(1), 0, 0), kvOp("k", "v", 1, StatusSet), kvOp("k", "v", 1, StatusSet))),
		ackOf(deltaOf(block(blockZstd, zstdEncoder().EncodeAll(make([]byte, 1<<20), nil)))),
		slices.Concat(envelope(TypeSyn), []byte{mpFixArray | 2}, appendStr(nil, "c"), []byte{mpArray32, 0xff, 0xff, 0xff, 0xff}),
		[]byte{magic0, magic1, 0, 9},
		nil,
	)
	return out
}

// decodeOK checks what every accepted input must satisfy: re-encoding
// decodes to the same message, and the canonical encoding is a fixpoint.
func decodeOK(t *testing.T, b []byte) {
	m, err := DecodeMessage(b)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
		}
		// Errors in a delta's op stream are located in the decoded stream
		// (up to maxDeltaStream bytes), not in the datagram (parseOps).
		if de.Offset < 0 || de.Offset > max(len(b), maxDeltaStream) {
			t.Fatalf("error offset %d outside the %d-byte input", de.Offset, len(b))
		}
		return
	}
	enc := EncodeMessage(m)
	again, err := DecodeMessage(enc)
	if err != nil {
		t.Fatalf("re-encoded %v does not decode: %v", m.Type(), err)
	}
	if diff := cmp.Diff(m, again, cmpOpts); diff != "" {
		t.Fatalf("re-encoded %v decodes differently (-first +second):\n%s", m.Type(), diff)
	}
	if enc2 := EncodeMessage(again); string(enc2) != string(enc) {
		t.Fatalf("the canonical encoding is not a fixpoint")
	}
	// Decoded digests are sorted and duplicate-free.
	var d Digest
	switch m := m.(type) {
	case *Syn:
		d = m.Digest
	case *SynAck:
		d = m.Digest
	}
	for i := 1; i < len(d); i++ {
		if d[i-1].ID.Compare(d[i].ID) >= 0 {
			t.Fatalf("decoded digest not strictly sorted at %d", i)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, b := range seedDatagrams(f) {
		f.Add(b)
	}
	f.Fuzz(decodeOK)
}

// The seeds themselves pass, as a plain test (fuzz targets only run their
// seeds under go test, which this makes explicit).
func TestFuzzSeedsDecode(t *testing.T) {
	accepted := 0
	for _, b := range seedDatagrams(t) {
		decodeOK(t, b)
		if _, err := DecodeMessage(b); err == nil {
			accepted++
		}
	}
	if accepted < 13 {
		t.Errorf("only %d seeds decode, want the 13 well-formed ones", accepted)
	}
}

func FuzzParseOps(f *testing.F) {
	seeds := [][]byte{
		nil,
		slices.Concat(nodeOp(id(10001), 80, 50), maxOp(100)),
		slices.Concat(nodeOp(id(10001), 0, 0), kvOp("key11", "val11", 1, StatusSet), kvOp("key12", "", 2, StatusDeleted),
			nodeOp(id(10002), 0, 0), kvOp("key21", "val21", 2, StatusSet), kvOp("key22", "val22", 3, StatusDeleteAfterTTL)),
		slices.Concat(nodeOp(id(1), 0, 0), kvOp("k", "v", 0, StatusSet)),
		slices.Concat(nodeOp(id(1), 0, 0), kvOpStatus("k", "v", 1, 3)),
		slices.Concat(nodeOp(id(1), 0, 0), nodeOp(id(1), 0, 0)),
		kvOp("k", "v", 1, StatusSet),
		{mpFixArray | 2, 3, 0},
	}
	var many [][]byte
	for i := range 12 {
		many = append(many, nodeOp(id(uint16(i)), 0, 0), kvOp(fmt.Sprint("k", i), "v", uint64(i+1), StatusSet))
	}
	seeds = append(seeds, slices.Concat(many...))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		nodes, err := parseOps(stream)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		// A node is named by its id (opNode) or by its ref alone
		// (opNodeRef, the id left zero): unique by both, as the parser
		// keys them (NodeDelta.key). Checking the id alone flagged two
		// ref ops of different refs (corpus 2c0dc57c3d49efa7).
		seen := map[nodeKey]bool{}
		for _, nd := range nodes {
			if seen[nd.key()] {
				t.Fatalf("node %v (ref %#x) accepted twice", nd.ID, nd.Ref)
			}
			seen[nd.key()] = true
			last := uint64(0)
			for _, m := range nd.KeyValues {
				if m.Version <= last || !m.Status.valid() {
					t.Fatalf("node %v: accepted version %d after %d, status %d", nd.ID, m.Version, last, m.Status)
				}
				last = m.Version
			}
			if len(nd.KeyValues) > 0 && nd.MaxVersion != last {
				t.Fatalf("node %v: max version %d, last key-value %d", nd.ID, nd.MaxVersion, last)
			}
		}
		d := Delta{Nodes: nodes}
		got := decodeDeltaBytes(t, appendDelta(nil, &d))
		if diff := cmp.Diff(d, got, cmpOpts); diff != "" {
			t.Fatalf("re-encoded delta differs (-parsed +again):\n%s", diff)
		}
	})
}

func FuzzDecodeDigest(f *testing.F) {
	f.Add(appendDigest(nil, Digest{{ID: id(10001), NodeDigest: NodeDigest{Heartbeat: 100, LastGCVersion: 2, MaxVersion: 3}}}))
	f.Add(appendDigest(nil, Digest{
		{ID: id(10002), NodeDigest: NodeDigest{Heartbeat: 102, LastGCVersion: 20, MaxVersion: 12}},
		{ID: id(10001), NodeDigest: NodeDigest{Heartbeat: 101, LastGCVersion: 1, MaxVersion: 11}},
		{ID: id(10002), NodeDigest: NodeDigest{Heartbeat: 103, LastGCVersion: 0, MaxVersion: 13}},
	}))
	f.Add(appendDigest(nil, seedMessages()[2].(*Syn).Digest))
	f.Add([]byte{mpArray32, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{mpFixArray})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &reader{b: b}
		d, err := decodeDigest(r)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		if len(d) > len(b)/minDigestEntrySize {
			t.Fatalf("%d entries from %d bytes", len(d), len(b))
		}
		enc := appendDigest(nil, d)
		if len(enc) != sizeDigest(d) {
			t.Fatalf("sizeDigest = %d, encoded %d bytes", sizeDigest(d), len(enc))
		}
		again, err := decodeDigest(&reader{b: enc})
		if err != nil {
			t.Fatalf("re-encoded digest does not decode: %v", err)
		}
		if diff := cmp.Diff(d, again, cmpOpts); diff != "" {
			t.Fatalf("re-encoded digest differs (-first +second):\n%s", diff)
		}
	})
}
