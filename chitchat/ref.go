package chitchat

import (
	"crypto/sha256"
	"encoding/binary"
)

// Node references place nodes on a ring of 2^64 positions, for digest
// coverage and push trees (docs/design/scale.md §1). They are never sent:
// both ends compute them from NodeIDs. SHA-256 makes a collision with an
// honest node's ref a second-preimage search.

// nodeRef returns the ref of id: the first 8 bytes, big-endian, of
// SHA-256("chitchat/ref/v1" ‖ u16 len(name) ‖ name ‖ u64 generation ‖
// ip (4 or 16 bytes) ‖ u16 port).
func nodeRef(id NodeID) uint64 {
	h := sha256.New()
	var b [64]byte
	p := append(b[:0], "chitchat/ref/v1"...)
	p = binary.BigEndian.AppendUint16(p, uint16(len(id.Name)))
	h.Write(p)
	h.Write([]byte(id.Name))
	p = binary.BigEndian.AppendUint64(b[:0], id.Generation)
	p = append(p, id.Addr.Addr().AsSlice()...)
	p = binary.BigEndian.AppendUint16(p, id.Addr.Port())
	h.Write(p)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// stateHash returns h(ns) = SHA-256("chitchat/state/v1" ‖ ref ‖
// last_gc_version ‖ max_version ‖ heartbeat>>16)[:8], as a little-endian
// uint64. Bucket summaries XOR them: two views of a bucket hash the same iff
// (with overwhelming probability) they hold the same nodes at the same
// versions and the same high bits of heartbeat, which makes the low 16 bits
// sent positionally exact.
//
// The hash is cached with a 64-bit stamp of its inputs (a multiplicative
// mix: a stamp collision while an input moved would need 2^64 luck, and
// would only delay anti-entropy for that node until its next change).
func (ns *NodeState) stateHash() uint64 {
	stamp := (ns.lastGCVersion*0x9e3779b97f4a7c15 ^ ns.maxVersion*0xc2b2ae3d27d4eb4f ^ (ns.heartbeat>>16)*0x165667b19e3779f9) | 1
	if ns.sumStamp == stamp {
		return ns.sum
	}
	var b [64]byte
	p := append(b[:0], "chitchat/state/v1"...)
	p = binary.BigEndian.AppendUint64(p, ns.ref)
	p = binary.BigEndian.AppendUint64(p, ns.lastGCVersion)
	p = binary.BigEndian.AppendUint64(p, ns.maxVersion)
	p = binary.BigEndian.AppendUint64(p, ns.heartbeat>>16)
	sum := sha256.Sum256(p)
	ns.sum, ns.sumStamp = binary.LittleEndian.Uint64(sum[:8]), stamp
	return ns.sum
}

// bucketOf returns the bucket of ref at bits.
func bucketOf(ref uint64, bits uint8) uint32 {
	if bits == 0 {
		return 0
	}
	return uint32(ref >> (64 - bits))
}

// bucketStart returns the first ref of bucket at bits.
func bucketStart(bucket uint32, bits uint8) uint64 {
	if bits == 0 {
		return 0
	}
	return uint64(bucket) << (64 - bits)
}
