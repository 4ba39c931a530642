package chitchat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Wire format, protocol version 1 (all MessagePack after a 4-byte envelope;
// docs/PROTOCOL.md §11 gives it byte by byte):
//
//	datagram   = magic(2) version(1) type(1) body
//	Syn        = [cluster_id str, digest, sender, coverage, pad]
//	SynAck     = [digest, sender, coverage, delta] | [digest, sender, coverage, delta, echo]
//	Ack        = [delta]
//	BadCluster = (no body)
//	Push       = [cluster_id str, range, notices, delta]
//	digest     = [entry...]                      sorted by node ID
//	entry      = [name str, generation uint, addr bin, heartbeat, last_gc_version, max_version]
//	sender     = uint: 0, or 1 + the index of the sender's own entry
//	coverage   = nil | [bits uint, first uint, count uint, summaries bin]
//	summaries  = (uvarint bucket offset, uvarint n, u64le hash, n × u16be heartbeat)...
//	pad        = nil | bin
//	echo       = [max_version uint, last_gc_version uint, fingerprint uint]
//	range      = nil | upto24·tag8 uint | [after uint, upto uint]   (one number: after is the recipient's)
//	notices    = [[kind uint, name str, generation uint, addr bin, heartbeat uint]...]
//	addr       = bin(ip bytes (4 or 16) ++ port big-endian (2))
//	delta      = [] | array16 of blocks (see deltacodec.go)

// Envelope constants.
const (
	magic0          = 0xc6 // first magic byte
	magic1          = 0x7c // second magic byte
	protocolVersion = 1
	envelopeSize    = 4
)

// MaxDatagramSize is the largest UDP payload over IPv4 and the default budget
// of every message.
const MaxDatagramSize = 65507

// maxBits bounds Coverage.Bits: 2^20 buckets is a million, far beyond any
// cluster (a bucket holds about 16 nodes).
const maxBits = 20

// ErrVersion is wrapped by the DecodeError of a datagram of another protocol
// version: a node speaking version 0 (upstream chitchat, or chitchat-go
// before protocol version 1) is refused, counted and logged, never a crash.
var ErrVersion = errors.New("unsupported protocol version")

const mpNil = 0xc0

// AppendMessage appends the wire encoding of m to dst.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, magic0, magic1, protocolVersion, byte(m.Type()))
	switch m := m.(type) {
	case *Syn:
		dst = append(dst, mpFixArray|5)
		dst = appendStr(dst, m.ClusterID)
		dst = appendDigest(dst, m.Digest)
		dst = appendUint(dst, senderIndex(m.Digest, m.Sender))
		dst = appendCoverage(dst, m.Cover)
		if m.Pad > 0 {
			dst = appendBinHeader(dst, m.Pad)
			dst = append(dst, make([]byte, m.Pad)...)
		} else {
			dst = append(dst, mpNil)
		}
	case *SynAck:
		if m.Echo == nil {
			dst = append(dst, mpFixArray|4)
		} else {
			dst = append(dst, mpFixArray|5)
		}
		dst = appendDigest(dst, m.Digest)
		dst = appendUint(dst, senderIndex(m.Digest, m.Sender))
		dst = appendCoverage(dst, m.Cover)
		dst = appendDelta(dst, &m.Delta)
		if m.Echo != nil {
			dst = append(dst, mpFixArray|3)
			dst = appendUint(dst, m.Echo.MaxVersion)
			dst = appendUint(dst, m.Echo.LastGCVersion)
			dst = appendUint(dst, m.Echo.Fingerprint)
		}
	case *Ack:
		dst = append(dst, mpFixArray|1)
		dst = appendDelta(dst, &m.Delta)
	case *Push:
		dst = append(dst, mpFixArray|4)
		dst = appendStr(dst, m.ClusterID)
		switch {
		case m.Range == nil:
			dst = append(dst, mpNil)
		case m.Range.AfterRecipient:
			dst = appendUint(dst, m.Range.short())
		default:
			dst = append(dst, mpFixArray|2)
			dst = appendUint(dst, m.Range.After>>32)
			dst = appendUint(dst, m.Range.Upto>>32)
		}
		dst = appendArrayHeader(dst, len(m.Notices))
		for _, n := range m.Notices {
			dst = append(dst, mpFixArray|5)
			dst = appendUint(dst, uint64(n.Kind))
			dst = appendStr(dst, n.ID.Name)
			dst = appendUint(dst, n.ID.Generation)
			dst = appendAddr(dst, n.ID.Addr)
			dst = appendUint(dst, n.Heartbeat)
		}
		dst = appendDelta(dst, &m.Delta)
	case *BadCluster:
	default:
		panic(fmt.Sprintf("chitchat: unknown message type %T", m))
	}
	return dst
}

// senderIndex returns 1 + the index of sender's entry in d, or 0.
func senderIndex(d Digest, sender NodeID) uint64 {
	if sender == (NodeID{}) {
		return 0
	}
	if i, ok := slices.BinarySearchFunc(d, sender, func(e DigestEntry, id NodeID) int { return e.ID.Compare(id) }); ok {
		return uint64(i) + 1
	}
	for i := range d { // a digest built by hand, unsorted
		if d[i].ID == sender {
			return uint64(i) + 1
		}
	}
	return 0
}

// EncodeMessage returns the wire encoding of m.
func EncodeMessage(m Message) []byte {
	return AppendMessage(make([]byte, 0, encodedSizeHint(m)), m)
}

// DecodeMessage decodes one datagram. Every error is a *DecodeError; the
// whole datagram must be consumed.
func DecodeMessage(b []byte) (Message, error) { return decodeMessage(b, maxDeltaStream) }

// decodeMessage decodes one message whose deltas may decode to at most
// maxStream bytes of ops.
func decodeMessage(b []byte, maxStream int) (Message, error) {
	if len(b) < envelopeSize {
		return nil, &DecodeError{Reason: fmt.Sprintf("datagram of %d bytes is shorter than the envelope", len(b)), Err: errTruncated}
	}
	if b[0] != magic0 || b[1] != magic1 {
		return nil, &DecodeError{Reason: fmt.Sprintf("bad magic 0x%02x%02x", b[0], b[1])}
	}
	if b[2] != protocolVersion {
		return nil, &DecodeError{Offset: 2, Reason: fmt.Sprintf("protocol version %d; this node speaks version %d", b[2], protocolVersion), Err: ErrVersion}
	}
	r := &reader{b: b, off: envelopeSize, maxStream: maxStream}
	var m Message
	var err error
	switch t := MessageType(b[3]); t {
	case TypeSyn:
		m, err = decodeSyn(r)
	case TypeSynAck:
		m, err = decodeSynAck(r)
	case TypeAck:
		m, err = decodeAck(r)
	case TypeBadCluster:
		m = &BadCluster{}
	case TypePush:
		m, err = decodePush(r)
	default:
		return nil, &DecodeError{Offset: 3, Reason: fmt.Sprintf("unknown message type %d", b[3])}
	}
	if err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, r.fail(fmt.Sprintf("%d trailing bytes", r.remaining()))
	}
	return m, nil
}

func decodeSyn(r *reader) (*Syn, error) {
	if err := r.fixArray("syn", 5); err != nil {
		return nil, err
	}
	cluster, err := r.str("cluster id")
	if err != nil {
		return nil, err
	}
	d, sender, err := decodeDigestAndSender(r)
	if err != nil {
		return nil, err
	}
	cover, err := decodeCoverage(r)
	if err != nil {
		return nil, err
	}
	pad := 0
	if !r.nilValue() {
		p, err := r.bin("padding")
		if err != nil {
			return nil, err
		}
		pad = len(p)
	}
	return &Syn{ClusterID: cluster, Digest: d, Sender: sender, Cover: cover, Pad: pad}, nil
}

func decodeSynAck(r *reader) (*SynAck, error) {
	n, err := r.fixArrayOf("synack", 4, 5)
	if err != nil {
		return nil, err
	}
	d, sender, err := decodeDigestAndSender(r)
	if err != nil {
		return nil, err
	}
	cover, err := decodeCoverage(r)
	if err != nil {
		return nil, err
	}
	delta, err := decodeDelta(r)
	if err != nil {
		return nil, err
	}
	m := &SynAck{Digest: d, Sender: sender, Cover: cover, Delta: delta}
	if n == 5 {
		if err := r.fixArray("echo", 3); err != nil {
			return nil, err
		}
		var e Echo
		if e.MaxVersion, err = r.uint("echo max version"); err != nil {
			return nil, err
		}
		if e.LastGCVersion, err = r.uint("echo last GC version"); err != nil {
			return nil, err
		}
		if e.Fingerprint, err = r.uint("echo fingerprint"); err != nil {
			return nil, err
		}
		m.Echo = &e
	}
	return m, nil
}

func decodeAck(r *reader) (*Ack, error) {
	if err := r.fixArray("ack", 1); err != nil {
		return nil, err
	}
	delta, err := decodeDelta(r)
	if err != nil {
		return nil, err
	}
	return &Ack{Delta: delta}, nil
}

// minNoticeSize is the smallest encoding of a notice.
const minNoticeSize = 1 + 1 + 1 + 1 + 8 + 1

func decodePush(r *reader) (*Push, error) {
	if err := r.fixArray("push", 4); err != nil {
		return nil, err
	}
	cluster, err := r.str("cluster id")
	if err != nil {
		return nil, err
	}
	p := &Push{ClusterID: cluster}
	if r.uintNext() {
		start := r.off
		v, err := r.uint("range upto")
		if err != nil {
			return nil, err
		}
		if v > 0xffff_ffff {
			r.off = start
			return nil, r.fail("range upto above 2^32 - 1")
		}
		p.Range = shortRange(v)
	} else if !r.nilValue() {
		if err := r.fixArray("ring range", 2); err != nil {
			return nil, err
		}
		var bounds [2]uint64
		for i, what := range [2]string{"range after", "range upto"} {
			start := r.off
			if bounds[i], err = r.uint(what); err != nil {
				return nil, err
			}
			if bounds[i] > 0xffff_ffff {
				r.off = start
				return nil, r.fail(what + " above 2^32 - 1")
			}
		}
		p.Range = &RingRange{After: bounds[0]<<32 | 0xffff_ffff, Upto: bounds[1]<<32 | 0xffff_ffff}
	}
	n, err := r.arrayHeader("notices", minNoticeSize)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		p.Notices = make([]Notice, n)
	}
	for i := range p.Notices {
		start := r.off
		if err := r.fixArray("notice", 5); err != nil {
			return nil, err
		}
		kind, err := r.uint("notice kind")
		if err != nil {
			return nil, err
		}
		if kind > uint64(NoticeDead) {
			r.off = start
			return nil, r.fail(fmt.Sprintf("unknown notice kind %d", kind))
		}
		id, err := decodeNodeID(r)
		if err != nil {
			return nil, err
		}
		hb, err := r.uint("heartbeat")
		if err != nil {
			return nil, err
		}
		p.Notices[i] = Notice{Kind: NoticeKind(kind), ID: id, Heartbeat: hb}
	}
	if p.Delta, err = decodeDelta(r); err != nil {
		return nil, err
	}
	return p, nil
}

// minDigestEntrySize is the smallest encoding of a digest entry: a fixarray,
// an empty name, five fixints... and an 8-byte address.
const minDigestEntrySize = 1 + 1 + 1 + 8 + 1 + 1 + 1

func sizeDigestEntry(e *DigestEntry) int {
	return 1 + sizeStr(len(e.ID.Name)) + sizeUint(e.ID.Generation) + sizeAddr(e.ID.Addr) +
		sizeUint(e.Heartbeat) + sizeUint(e.LastGCVersion) + sizeUint(e.MaxVersion)
}

// sizeDigest returns the exact encoded size of d.
func sizeDigest(d Digest) int {
	n := sizeArrayHeader(len(d))
	for i := range d {
		n += sizeDigestEntry(&d[i])
	}
	return n
}

func appendDigest(b []byte, d Digest) []byte {
	b = appendArrayHeader(b, len(d))
	for i := range d {
		e := &d[i]
		b = append(b, mpFixArray|6)
		b = appendStr(b, e.ID.Name)
		b = appendUint(b, e.ID.Generation)
		b = appendAddr(b, e.ID.Addr)
		b = appendUint(b, e.Heartbeat)
		b = appendUint(b, e.LastGCVersion)
		b = appendUint(b, e.MaxVersion)
	}
	return b
}

func decodeNodeID(r *reader) (NodeID, error) {
	name, err := r.str("node name")
	if err != nil {
		return NodeID{}, err
	}
	gen, err := r.uint("generation")
	if err != nil {
		return NodeID{}, err
	}
	addr, err := r.addr("node address")
	if err != nil {
		return NodeID{}, err
	}
	return NodeID{Name: name, Generation: gen, Addr: addr}, nil
}

// decodeDigestAndSender decodes a digest and the sender index that follows
// it, resolving the index in the digest's wire order.
func decodeDigestAndSender(r *reader) (Digest, NodeID, error) {
	d, err := decodeDigestEntries(r)
	if err != nil {
		return nil, NodeID{}, err
	}
	idx, err := r.uint("sender")
	if err != nil {
		return nil, NodeID{}, err
	}
	if idx > uint64(len(d)) {
		return nil, NodeID{}, r.fail(fmt.Sprintf("sender index %d of a digest of %d entries", idx, len(d)))
	}
	var sender NodeID
	if idx > 0 {
		sender = d[idx-1].ID
	}
	return d.normalize(), sender, nil
}

func decodeDigestEntries(r *reader) (Digest, error) {
	n, err := r.arrayHeader("digest", minDigestEntrySize)
	if err != nil {
		return nil, err
	}
	d := make(Digest, n)
	if n == 0 {
		return d, nil
	}
	// The names are substrings of one copy of the rest of the datagram: one
	// allocation instead of one per entry. A decoded digest therefore pins
	// that copy; the Engine clones the names of the nodes it creates.
	start := r.off
	rest := string(r.b[start:])
	for i := range d {
		if err := r.fixArray("digest entry", 6); err != nil {
			return nil, err
		}
		e := &d[i]
		name, err := r.strBytes("node name")
		if err != nil {
			return nil, err
		}
		at := r.off - len(name) - start
		e.ID.Name = rest[at : at+len(name)]
		if e.ID.Generation, err = r.uint("generation"); err != nil {
			return nil, err
		}
		if e.ID.Addr, err = r.addr("node address"); err != nil {
			return nil, err
		}
		if e.Heartbeat, err = r.uint("heartbeat"); err != nil {
			return nil, err
		}
		if e.LastGCVersion, err = r.uint("last gc version"); err != nil {
			return nil, err
		}
		if e.MaxVersion, err = r.uint("max version"); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// appendCoverage appends a coverage, or nil.
func appendCoverage(b []byte, c *Coverage) []byte {
	if c == nil {
		return append(b, mpNil)
	}
	b = append(b, mpFixArray|4)
	b = appendUint(b, uint64(c.Bits))
	b = appendUint(b, uint64(c.First))
	b = appendUint(b, uint64(c.Count))
	b = appendBinHeader(b, summariesSize(c))
	for _, s := range c.Summaries {
		b = binary.AppendUvarint(b, uint64(c.offset(s.Bucket)))
		b = binary.AppendUvarint(b, uint64(len(s.Heartbeats)))
		b = binary.LittleEndian.AppendUint64(b, s.Hash)
		for _, h := range s.Heartbeats {
			b = binary.BigEndian.AppendUint16(b, h)
		}
	}
	return b
}

// summariesSize returns the size of the summaries blob of c.
func summariesSize(c *Coverage) int {
	n := 0
	for _, s := range c.Summaries {
		n += uvarintSize(uint64(c.offset(s.Bucket))) + uvarintSize(uint64(len(s.Heartbeats))) + 8 + 2*len(s.Heartbeats)
	}
	return n
}

// sizeCoverage returns the encoded size of c.
func sizeCoverage(c *Coverage) int {
	if c == nil {
		return 1
	}
	return 1 + sizeUint(uint64(c.Bits)) + sizeUint(uint64(c.First)) + sizeUint(uint64(c.Count)) + sizeBin(summariesSize(c))
}

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// decodeCoverage decodes a coverage, checking that it describes a valid run
// of buckets and that summaries are in order, inside it, and well formed.
func decodeCoverage(r *reader) (*Coverage, error) {
	if r.nilValue() {
		return nil, nil
	}
	start := r.off
	if err := r.fixArray("coverage", 4); err != nil {
		return nil, err
	}
	bits, err := r.uint("coverage bits")
	if err != nil {
		return nil, err
	}
	first, err := r.uint("coverage first bucket")
	if err != nil {
		return nil, err
	}
	count, err := r.uint("coverage bucket count")
	if err != nil {
		return nil, err
	}
	if bits > maxBits || first >= 1<<bits || count == 0 || count > 1<<bits {
		r.off = start
		return nil, r.fail(fmt.Sprintf("coverage of %d buckets from %d at %d bits", count, first, bits))
	}
	c := &Coverage{Bits: uint8(bits), First: uint32(first), Count: uint32(count)}
	blob, err := r.bin("summaries")
	if err != nil {
		return nil, err
	}
	prev := -1
	// One allocation for every summary's heartbeats (a blob byte pair per
	// heartbeat at most), and one for the summaries (10 bytes each at least).
	var slab []uint16
	if len(blob) > 0 {
		slab = make([]uint16, 0, len(blob)/2)
		c.Summaries = make([]BucketSummary, 0, len(blob)/10+1)
	}
	for off := 0; off < len(blob); {
		o, n := binary.Uvarint(blob[off:])
		if n <= 0 || o >= count || int(o) <= prev {
			return nil, r.fail(fmt.Sprintf("summary bucket offset at blob byte %d", off))
		}
		off += n
		k, n := binary.Uvarint(blob[off:])
		if n <= 0 || k > uint64(len(blob)-off-n-8)/2 || len(blob)-off-n < 8 {
			return nil, r.fail(fmt.Sprintf("summary of bucket offset %d: node count", o))
		}
		off += n
		s := BucketSummary{Bucket: uint32((first + o) & (1<<bits - 1)), Hash: binary.LittleEndian.Uint64(blob[off:])}
		off += 8
		if k > 0 {
			start := len(slab)
			for range k {
				slab = append(slab, binary.BigEndian.Uint16(blob[off:]))
				off += 2
			}
			s.Heartbeats = slab[start:len(slab):len(slab)]
		}
		c.Summaries = append(c.Summaries, s)
		prev = int(o)
	}
	return c, nil
}

// valid reports whether c (nil: no coverage) is what the decoder accepts:
// a run of 1 to 2^Bits buckets at most maxBits bits, with summaries in
// order inside it. Engine.Step checks it, since a message built by hand
// does not go through the decoder.
func (c *Coverage) valid() bool {
	if c == nil {
		return true
	}
	if c.Bits > maxBits || uint64(c.First) >= 1<<c.Bits || c.Count == 0 || uint64(c.Count) > 1<<c.Bits {
		return false
	}
	prev := int64(-1)
	for i := range c.Summaries {
		k := c.Summaries[i].Bucket
		if uint64(k) >= 1<<c.Bits {
			return false
		}
		o := int64(c.offset(k))
		if o >= int64(c.Count) || o <= prev {
			return false
		}
		prev = o
	}
	return true
}

// offset returns bucket's position in c's run of buckets.
func (c *Coverage) offset(bucket uint32) uint32 {
	return (bucket - c.First) & (1<<c.Bits - 1)
}

// equalDeltas compares node deltas, ignoring the cached encoding.
func equalDeltas(a, b *Delta) bool {
	return slices.EqualFunc(a.Nodes, b.Nodes, func(x, y NodeDelta) bool {
		return x.ID == y.ID && x.Ref == y.Ref && x.LastGCVersion == y.LastGCVersion &&
			x.FromVersionExcluded == y.FromVersionExcluded && x.MaxVersion == y.MaxVersion &&
			slices.Equal(x.KeyValues, y.KeyValues)
	})
}

// decodeDigest decodes a digest alone (no sender index), normalized.
func decodeDigest(r *reader) (Digest, error) {
	d, err := decodeDigestEntries(r)
	if err != nil {
		return nil, err
	}
	return d.normalize(), nil
}
