package chitchat

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// fuzzEngine returns an engine with small limits and a few known peers, so
// that random input reaches the interesting paths (limits, resets, GC).
func fuzzEngine(tb testing.TB) *Engine {
	tb.Helper()
	cfg := Config{
		ID:                           NodeID{Name: "self", Addr: netip.MustParseAddrPort("127.0.0.1:1")},
		ClusterID:                    "fz",
		MarkedForDeletionGracePeriod: time.Second,
		Limits:                       Limits{MaxNodes: 32, MaxKeysPerNode: 64, MaxKeySize: 64, MaxValueSize: 256},
	}
	cfg.FailureDetector.DeadNodeGracePeriod = 10 * time.Second
	e, err := NewEngine(cfg, rand.New(rand.NewPCG(1, 2)), []KeyValue{{"a", "1"}, {"b", "2"}})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// fuzzMessages builds a message stream from raw fuzz bytes: each chunk is
// decoded as a datagram when it decodes, and otherwise interpreted as a
// compact recipe for a structurally valid but adversarial message (invented
// nodes, huge versions, resets, oversized values, duplicates).
func fuzzMessages(data []byte) []Message {
	var out []Message
	for len(data) > 0 {
		n := int(data[0])%64 + 1
		chunk := data[1:min(len(data), 1+n)]
		data = data[min(len(data), 1+n):]
		if m, err := DecodeMessage(chunk); err == nil {
			out = append(out, m)
			continue
		}
		out = append(out, recipe(chunk))
	}
	return out
}

func recipe(b []byte) Message {
	get := func(i int) uint64 {
		if i < len(b) {
			return uint64(b[i])
		}
		return 0
	}
	id := func(i uint64) NodeID {
		return NodeID{Name: string(rune('a' + i%8)), Generation: i / 8 % 2, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2}), uint16(i%8+2))}
	}
	version := func(x uint64) uint64 {
		switch x % 5 {
		case 0:
			return 0
		case 1:
			return x
		case 2:
			return 1 << 62
		case 3:
			return 1<<62 + 1
		}
		return ^uint64(0) - x
	}
	var digest Digest
	for i := range int(get(1) % 6) {
		digest = append(digest, DigestEntry{ID: id(get(2 + i)), NodeDigest: NodeDigest{
			Heartbeat: get(3+i) * 3, LastGCVersion: version(get(4 + i)), MaxVersion: version(get(5 + i)),
		}})
	}
	digest = digest.normalize()
	var delta Delta
	for i := range int(get(6) % 4) {
		nd := NodeDelta{ID: id(get(7 + i)), LastGCVersion: version(get(8 + i)), FromVersionExcluded: get(9+i) % 4}
		v := nd.FromVersionExcluded
		for k := range int(get(10+i) % 5) {
			v += 1 + get(11+i+k)%3
			val := ""
			if get(12+k)%7 == 0 {
				val = string(make([]byte, 300)) // above MaxValueSize
			}
			nd.KeyValues = append(nd.KeyValues, KeyValueMutation{Key: string(rune('k' + k)), Value: val, Version: v, Status: Status(get(13+k) % 3)})
		}
		nd.MaxVersion = max(v, version(get(14+i))%8)
		delta.Nodes = append(delta.Nodes, nd)
	}
	switch get(0) % 4 {
	case 0:
		return &Syn{ClusterID: "fz", Digest: digest}
	case 1:
		return &SynAck{Digest: digest, Delta: delta}
	case 2:
		return &Ack{Delta: delta}
	}
	return &BadCluster{}
}

// FuzzEngineProcess feeds adversarial messages into a live engine, with
// rounds and time passing in between: it must never panic, every reply must
// fit the datagram budget and decode, and the invariants must hold after
// every step.
func FuzzEngineProcess(f *testing.F) {
	e := fuzzEngine(f)
	now := time.Unix(1_700_000_000, 0)
	f.Add(EncodeMessage(e.CreateSyn(now)))
	f.Add([]byte{3, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{20, 1, 3, 2, 9, 4, 4, 2, 2, 5, 3, 1, 1, 1, 0, 0, 1, 2, 3, 4, 5})
	seed := make([]byte, 8)
	binary.BigEndian.PutUint64(seed, 0xdeadbeefcafef00d)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		e := fuzzEngine(t)
		now := time.Unix(1_700_000_000, 0)
		prev := map[uint64][2]uint64{}
		for i, m := range fuzzMessages(data) {
			reply := e.Process(now, m)
			if reply != nil {
				b := EncodeMessage(reply)
				if len(b) > e.cfg.MaxDatagramSize {
					t.Fatalf("step %d: reply of %d bytes exceeds %d", i, len(b), e.cfg.MaxDatagramSize)
				}
				if _, err := DecodeMessage(b); err != nil {
					t.Fatalf("step %d: reply does not decode: %v", i, err)
				}
			}
			if err := checkInvariants(e, prev); err != nil {
				t.Fatalf("step %d (%T): %v", i, m, err)
			}
			if i%3 == 2 {
				now = now.Add(700 * time.Millisecond)
				e.Tick(now)
				if err := checkInvariants(e, prev); err != nil {
					t.Fatalf("step %d (tick): %v", i, err)
				}
			}
		}
		if err := e.Set("after", "fuzz"); err != nil {
			t.Fatalf("the self node can no longer be written: %v", err)
		}
	})
}

// FuzzSealOpen feeds arbitrary datagrams to the decryption path: it must
// never panic nor accept anything that was not sealed with the key (the
// chance of forging a Poly1305 tag is negligible).
func FuzzSealOpen(f *testing.F) {
	ring, _ := NewKeyring(testKey(1))
	send := newSealer(ring, "c", netip.MustParseAddrPort("127.0.0.1:1"), 1, 8)
	to := netip.MustParseAddrPort("127.0.0.1:2")
	f.Add(send.seal(nil, EncodeMessage(&BadCluster{}), to))
	f.Add(send.seal(nil, EncodeMessage(&Syn{ClusterID: "c"}), netip.AddrPort{}))
	f.Add([]byte{magic0, magic1, protocolVersion, typeSealed})
	f.Add(make([]byte, sealOverhead))
	f.Fuzz(func(t *testing.T, data []byte) {
		recv := newSealer(ring, "c", to, 1, 8)
		o, err := recv.open(data, nil)
		if err == nil && len(data) < sealOverhead {
			t.Fatalf("opened a %d-byte datagram", len(data))
		}
		if err == nil {
			if _, err := recv.open(data, nil); err == nil {
				t.Fatal("the same datagram opened twice")
			}
			// Only datagrams sealed with the key open: the seeds, which
			// seal whole messages.
			if _, err := DecodeMessage(o.msg); err != nil {
				t.Fatalf("opened plaintext is not a message: %v", err)
			}
		}
	})
}
