package chitchat

import (
	"fmt"
	"net/netip"
)

// MessageType identifies a message on the wire. ONLY APPEND: values are on
// the wire.
type MessageType uint8

const (
	TypeSyn        MessageType = 0
	TypeSynAck     MessageType = 1
	TypeAck        MessageType = 2
	TypeBadCluster MessageType = 3
	TypePush       MessageType = 4
)

func (t MessageType) String() string {
	switch t {
	case TypeSyn:
		return "Syn"
	case TypeSynAck:
		return "SynAck"
	case TypeAck:
		return "Ack"
	case TypeBadCluster:
		return "BadCluster"
	case TypePush:
		return "Push"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is one of *Syn, *SynAck, *Ack, *BadCluster and *Push.
//
// A handshake is Syn (A's digest) → SynAck (B's digest, the delta A lacks)
// → Ack (the delta B lacks): one exchange moves news both ways. A Push
// carries fresh news outside handshakes (docs/design/scale.md §7).
type Message interface {
	Type() MessageType
}

// Syn opens a handshake with the initiator's digest.
type Syn struct {
	ClusterID string
	// Digest holds the explicit entries, sorted by ID.
	Digest Digest
	// Sender, when set, is the initiator's own ID; its entry is in Digest.
	// A Syn that comes from its Sender is direct evidence that it is alive.
	Sender NodeID
	// Cover is nil when Digest is the initiator's whole view (upstream's
	// digest); otherwise it says which part of the ring the Syn covers and
	// summarizes (docs/design/scale.md §2).
	Cover *Coverage
	// Pad is the number of padding bytes: a node that knows few others
	// pads its Syns so that a plaintext answer (at most 3 times the Syn's
	// size) can still carry the cluster.
	Pad int
}

// SynAck answers a Syn with the responder's digest and what the initiator
// lacks.
type SynAck struct {
	Digest Digest
	Sender NodeID
	Cover  *Coverage
	Delta  Delta
	// Echo, if not nil, is what the responder holds of the initiator's
	// own state: the initiator checks it against its own (owners are
	// authoritative about themselves, docs/design/scale.md §6).
	Echo *Echo
}

// Echo is a peer's view of the receiver's own state: its max version, its
// last GC version, and the fingerprint of its keys of status Set (the XOR
// of the first 8 bytes of SHA-256 of each key's length and bytes, version,
// status and value). A view at the receiver's max version holds every
// version the receiver wrote up to it, so its Set entries are the
// receiver's: a fingerprint that differs there means keys the receiver
// never wrote at versions it did write, a forgery version numbers alone
// cannot show (docs/PROTOCOL.md §17.1).
type Echo struct {
	MaxVersion    uint64
	LastGCVersion uint64
	Fingerprint   uint64
}

// Ack closes a handshake with what the responder lacks.
type Ack struct {
	Delta Delta
}

// BadCluster answers a Syn from another cluster.
type BadCluster struct{}

// Push carries news as it happens: a delta, notices of life and death,
// and the part of the ring the receiver must forward it to.
type Push struct {
	ClusterID string
	// Range is the receiver's forwarding duty: the live nodes it knows in
	// that part of the ring. nil: forward to nobody.
	Range   *RingRange
	Notices []Notice
	Delta   Delta
}

// RingRange is the part of the ring of node refs after After, up to and
// including Upto, wrapping around; After == Upto is the whole ring but
// After itself.
//
// On the wire a range travels as the high 32 bits of its bounds (10 bytes
// where two refs take 18; a push is the most frequent datagram of a
// writing cluster), so the ranges we build have their low 32 bits set
// (ringBound): a range then holds the nodes whose refs' high 32 bits are
// in (After>>32, Upto>>32], and a decoded range is the one that was sent.
//
// A forwarding duty starts at its recipient (the first node of its chunk),
// so After usually goes without saying: with AfterRecipient set, the wire
// carries one 32-bit number (5 bytes off every forwarded push): Upto's
// high 24 bits (the range then ends with the nodes whose refs' high 24
// bits are Upto's: upToBound) and the low byte of the ref of the node it is
// meant for (Tag). The recipient takes its own bound for After; a tag not
// its own means the push was routed to an earlier identity at its address
// (a restart the sender has not seen yet), whose duty would start at the
// wrong place: it is applied and not forwarded.
type RingRange struct {
	After, Upto uint64
	// AfterRecipient: After is the recipient's own bound and is not sent;
	// After is meaningful only once the recipient has resolved it.
	AfterRecipient bool
	// Tag is the low byte of the intended recipient's ref (AfterRecipient).
	Tag uint8
}

// upToBound returns the end of a short-form range (AfterRecipient) that
// holds ref: ref's high 24 bits, the low 40 set.
func upToBound(ref uint64) uint64 { return ref | (1<<40 - 1) }

// short returns the wire number of a short-form range: Upto's high 24
// bits, then Tag.
func (r *RingRange) short() uint64 { return r.Upto>>40<<8 | uint64(r.Tag) }

// shortRange returns the short-form range of wire number v (at most
// 2^32 - 1).
func shortRange(v uint64) *RingRange {
	return &RingRange{Upto: upToBound(v >> 8 << 40), AfterRecipient: true, Tag: uint8(v)}
}

// ringBound returns ref's bound in a RingRange: its high 32 bits, the
// low ones set.
func ringBound(ref uint64) uint64 { return ref | 0xffff_ffff }

// Contains reports whether ref is in the range.
func (r RingRange) Contains(ref uint64) bool {
	switch {
	case r.After < r.Upto:
		return ref > r.After && ref <= r.Upto
	case r.After == r.Upto:
		// The whole ring but After: with a bound (ringBound), every node
		// but those sharing its high 32 bits.
		return ref != r.After && ringBound(ref) != r.After
	}
	return ref > r.After || ref <= r.Upto
}

// NoticeKind is the kind of a Notice. ONLY APPEND: values are on the wire.
type NoticeKind uint8

const (
	// NoticeAlive: the sender got a datagram directly from the node, whose
	// heartbeat was at least Heartbeat.
	NoticeAlive NoticeKind = 0
	// NoticeDead: the sender's failure detector found the node dead, its
	// heartbeat last seen at Heartbeat.
	NoticeDead NoticeKind = 1
)

func (k NoticeKind) String() string {
	switch k {
	case NoticeAlive:
		return "alive"
	case NoticeDead:
		return "dead"
	}
	return fmt.Sprintf("NoticeKind(%d)", uint8(k))
}

// Notice is news of a node's life or death.
type Notice struct {
	Kind      NoticeKind
	ID        NodeID
	Heartbeat uint64
}

// Coverage says which part of the ring a digest covers: buckets First to
// First+Count-1 (wrapping) out of 2^Bits, node x being in bucket
// ref(x) >> (64-Bits). A covered bucket with a summary is summarized: the
// sender's advertised nodes in it that are not in the digest's explicit
// entries have that count, hash and heartbeats. A covered bucket without a
// summary is fully explicit: every node the sender advertises in it is in
// the explicit entries (absent means unknown).
type Coverage struct {
	Bits         uint8
	First, Count uint32
	// Summaries are in covered order (from First, wrapping), at most one
	// per bucket.
	Summaries []BucketSummary
}

// BucketSummary summarizes the sender's view of the nodes of one bucket
// not listed explicitly.
type BucketSummary struct {
	Bucket uint32
	// Hash is the XOR of the nodes' state hashes (stateHash).
	Hash uint64
	// Heartbeats are the low 16 bits of the nodes' heartbeats, in ref
	// order: the receiver, whose view hashes the same, takes the high bits
	// from its own view.
	Heartbeats []uint16
}

func (*Syn) Type() MessageType        { return TypeSyn }
func (*SynAck) Type() MessageType     { return TypeSynAck }
func (*Ack) Type() MessageType        { return TypeAck }
func (*BadCluster) Type() MessageType { return TypeBadCluster }
func (*Push) Type() MessageType       { return TypePush }

// Inbound describes how a message arrived, for Engine.Step.
type Inbound struct {
	// From is the sender's address: the authenticated sender of a sealed
	// datagram, the source address of a plaintext one.
	From netip.AddrPort
	// Authentic is true when From was authenticated (sealed datagrams).
	// Plaintext replies are then limited to 3 times Size, so that a
	// spoofed source cannot be used to amplify traffic.
	Authentic bool
	// Size is the message's size on the wire (0: unknown, no limit).
	Size int
	// Stream is true for a message read from a stream: the reply budget
	// is Config.MaxStreamMessageSize and digests are explicit.
	Stream bool
}
