package chitchat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzAdversaryCluster drives the adversary harness of adversary_test.go
// with a fuzzed participant: three honest engines that see each other live,
// then the input's datagrams (arbitrary bytes: whatever does not decode is
// dropped, as a server would) injected into them from any source, replays
// of what they sent, honest rounds and time in between; then the
// participant stops and honest gossip must heal as in the property: no
// node wiped, every node live everywhere under its current identity, the
// writes made after the stop everywhere, memory within Limits, no panic,
// the invariants after every call.
//
// Input:
//
//	mode(1)     bit 0: keyed (the participant holds the key and seals what
//	            it sends); bits 1-2: max buckets per Syn; bit 3: one node per
//	            bucket (partial digests)
//	op...       up to maxFuzzOps of:
//	  c(1)      victim = c % 3; kind = c / 3 % 8:
//	            0-4 a datagram from h0, h1, h2, the participant, nowhere:
//	                len(2, big-endian, at most 2048) bytes(len)
//	            5   replay: k(1), the k-th datagram honest engines sent
//	            6   an honest round
//	            7   seconds(1): time passes (s % 6), the victim ticks
//
// Bytes left after the ops feed the heal phase's choices.
func FuzzAdversaryCluster(f *testing.F) {
	for _, seed := range fuzzClusterSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode := data[0]
		data = data[1:]
		tune := tuning{maxBuckets: uint32(mode >> 1 & 3)}
		if mode&8 != 0 {
			tune.bucketTarget = 1
		}
		s := newAdvSimWith(t, mode&1 != 0, 3, 1400, 1, tune)
		s.warmUp()
		for op := 0; op < maxFuzzOps && len(data) > 0; op++ {
			c := data[0]
			data = data[1:]
			victim, kind := int(c)%3, int(c)/3%8
			switch kind {
			case 0, 1, 2, 3, 4:
				if len(data) < 2 {
					data = nil
					break
				}
				n := min(int(binary.BigEndian.Uint16(data)), 2048, len(data)-2)
				b := data[2 : 2+n]
				data = data[2+n:]
				src := [...]netip.AddrPort{advHonestAddr(0), advHonestAddr(1), advHonestAddr(2), advAddr, nowhere}[kind]
				s.inject(victim, src, b)
			case 5:
				if len(data) < 1 || len(s.captured) == 0 {
					data = nil
					break
				}
				k := int(data[0]) % len(s.captured)
				data = data[1:]
				s.stats.replayed++
				if r := s.receive(victim, advPacket{src: s.captured[k].src, dst: s.addrs[victim], b: s.captured[k].b, cap: k}, false); r != nil {
					s.deliver(*r)
				}
			case 6:
				s.round()
			case 7:
				if len(data) < 1 {
					data = nil
					break
				}
				s.now = s.now.Add(time.Duration(data[0]%6) * time.Second)
				data = data[1:]
				s.honest[victim].Tick(s.now)
				s.check(victim, "Tick")
			}
		}
		s.heal(&byteDraw{data})
	})
}

// maxFuzzOps bounds the ops of one input, so that an execution stays fast.
const maxFuzzOps = 64

// byteDraw draws the heal phase's choices from the input's last bytes (the
// smallest choice once they run out).
type byteDraw struct{ b []byte }

func (d *byteDraw) Int(lo, hi int, _ string) int {
	if len(d.b) == 0 {
		return lo
	}
	v := int(d.b[0])
	d.b = d.b[1:]
	return lo + v%(hi-lo+1)
}

// warmUp runs rounds until every honest engine sees every other live.
func (s *advSim) warmUp() {
	for range 6 {
		s.round()
	}
	for _, e := range s.honest {
		if n := len(e.LiveNodes()); n != len(s.honest) {
			s.t.Fatalf("%v sees %d live nodes after warm-up, want %d", e.Self(), n, len(s.honest))
		}
	}
}

// inject delivers bytes from the participant to honest engine j as coming
// from src (keyed: sealed by the participant, which holds the key, with
// src as the sender and a counter above the real sender's), and routes the
// reply.
func (s *advSim) inject(j int, src netip.AddrPort, b []byte) {
	if s.keyed {
		var counter uint64
		if i := s.index(src); i >= 0 {
			counter = s.sealers[i].counter.Load() + 1
		} else {
			s.advCounter++
			counter = s.advCounter
		}
		b = newSealer(s.ring, advCluster, src, counter-1, 1).seal(nil, b, s.addrs[j])
	}
	s.stats.injected++
	if r := s.receive(j, advPacket{src: src, dst: s.addrs[j], b: b, cap: -1}, false); r != nil {
		s.deliver(*r)
	}
}

// fuzzOps builds an input of FuzzAdversaryCluster.
type fuzzOps []byte

// fuzzHonest is honest engine i's identity before any reincarnation.
func fuzzHonest(i int) NodeID {
	return NodeID{Name: fmt.Sprintf("h%d", i), Generation: 7, Addr: advHonestAddr(i)}
}

// send: m from source from (0-2 honest, 3 the participant, 4 nowhere) to
// honest engine victim.
func (o fuzzOps) send(victim, from int, m Message) fuzzOps {
	b := EncodeMessage(m)
	o = append(o, byte(from*3+victim))
	o = binary.BigEndian.AppendUint16(o, uint16(len(b)))
	return append(o, b...)
}

func (o fuzzOps) replay(victim int, k byte) fuzzOps { return append(o, byte(5*3+victim), k) }
func (o fuzzOps) round() fuzzOps                    { return append(o, 6*3) }
func (o fuzzOps) tick(victim int, seconds byte) fuzzOps {
	return append(o, byte(7*3+victim), seconds)
}

// fuzzClusterSeeds are realistic forgeries: the attacks of issue 11 and
// hostile_test.go, against the fuzz cluster's identities.
func fuzzClusterSeeds() [][]byte {
	h0, h1, h2 := fuzzHonest(0), fuzzHonest(1), fuzzHonest(2)
	synOf := func(d ...DigestEntry) *Syn { return &Syn{ClusterID: advCluster, Digest: Digest(d).normalize()} }
	entry := func(id NodeID, hb, gc, max uint64) DigestEntry {
		return DigestEntry{ID: id, NodeDigest: NodeDigest{Heartbeat: hb, LastGCVersion: gc, MaxVersion: max}}
	}
	ack := func(nodes ...NodeDelta) *Ack { return &Ack{Delta: buildDelta(nodes)} }
	var invented []DigestEntry
	for i := range 10 {
		invented = append(invented, entry(NodeID{Name: fmt.Sprintf("ghost-%d", i), Addr: nowhere}, 1, 0, 0))
	}
	rising := func(hb uint64) *Syn {
		d := slices.Clone(invented)
		for i := range d {
			d[i].Heartbeat = hb
		}
		return synOf(d...)
	}
	long := NodeID{Name: strings.Repeat("y", 30), Addr: advAddr}
	seeds := [][]byte{
		// Item 1: a heartbeat above 2^62, and one at the refutation limit.
		append([]byte{0}, fuzzOps(nil).send(0, 2, synOf(entry(h1, 1<<63, 0, 0))).round().send(2, 4, synOf(entry(h1, maxSafeVersion, 0, 0)))...),
		// A refutable heartbeat claim, to two holders, keyed.
		append([]byte{1}, fuzzOps(nil).send(0, 3, synOf(entry(h1, 1_000_000, 0, 0))).send(2, 3, synOf(entry(h1, 1_000_000, 0, 0))).round()...),
		// Items 3 and 4: a forged reset, to a holder and to the owner.
		append([]byte{0}, fuzzOps(nil).
			send(0, 2, ack(NodeDelta{ID: h1, LastGCVersion: 1 << 50, MaxVersion: 1<<50 + 1, KeyValues: []KeyValueMutation{kv("role", "forged", 1<<50+1, StatusSet)}})).
			send(1, 0, ack(NodeDelta{ID: h1, LastGCVersion: 1 << 40, MaxVersion: 1 << 40})).tick(1, 1)...),
		// Claims about the receiver at the edges of the version space, with
		// partial digests.
		append([]byte{8 | 2<<1}, fuzzOps(nil).
			send(0, 3, &SynAck{Digest: Digest{entry(h0, refuteLimit-1, refuteLimit-1, refuteLimit-1), entry(advID, 5, 0, 0)}, Sender: advID}).
			send(0, 3, synOf(entry(h0, refuteLimit, 0, 0))).round().round()...),
		// Item 2: invented nodes with long names and huge versions.
		append([]byte{0}, fuzzOps(nil).send(2, 4, synOf(entry(long, 1, 1<<62, 1<<62+1), entry(NodeID{Name: "x", Addr: advHonestAddr(1)}, 1<<63, 0, 1<<63))).round()...),
		// Invented nodes kept heart-beating, to fill Limits.MaxNodes.
		append([]byte{0}, fuzzOps(nil).send(1, 3, rising(1)).tick(1, 1).send(1, 3, rising(2)).tick(1, 1).send(1, 3, rising(3)).tick(1, 1).send(1, 3, rising(4)).round()...),
		// Coverage with summaries that match nothing, from another cluster
		// too, and replays of honest datagrams, keyed.
		append([]byte{1 | 8 | 1<<1}, fuzzOps(nil).
			send(0, 1, &Syn{ClusterID: advCluster, Digest: Digest{entry(h1, 1, 0, 0)}, Sender: h1, Cover: &Coverage{Bits: 2, First: 1, Count: 4,
				Summaries: []BucketSummary{{Bucket: 1, Hash: 42, Heartbeats: []uint16{1, 2}}, {Bucket: 3, Hash: 7}}}}).
			send(2, 3, &Syn{ClusterID: "other"}).replay(1, 3).replay(2, 3).replay(0, 200).tick(0, 5).round()...),
		// Keys under another node's id at versions it has not used yet.
		append([]byte{0}, fuzzOps(nil).send(2, 0, ack(NodeDelta{ID: h1, FromVersionExcluded: 0, MaxVersion: 3,
			KeyValues: []KeyValueMutation{kv("a", "1", 1, StatusSet), kv("b", "", 2, StatusDeleted), kv("c", "3", 3, StatusDeleteAfterTTL)}})).round()...),
	}
	_ = h2
	return seeds
}
