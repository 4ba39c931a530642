package chitchat

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"golang.org/x/crypto/chacha20poly1305"
)

// confHandleWire runs one command of a testdata/wire file. Inputs are hex bytes;
// whitespace is ignored and "#" starts a comment that runs to the end of the
// line, so that a vector can name its fields.
func confHandleWire(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "decode":
		return confWireDecode(t, td)
	case "encode":
		return confWireEncode(t, td)
	case "seal":
		return confWireSeal(t, td)
	case "open":
		return confWireOpen(t, td)
	case "ref":
		return confWireRef(t, td)
	case "summaries":
		return confWireSummaries(t, td)
	}
	td.Fatalf(t, "unknown command %q (want decode, encode, seal, open, ref or summaries)", td.Cmd)
	return ""
}

// confWireDecode decodes a datagram and prints the message as JSON, or the
// decoder's refusal. A datagram that decodes but does not re-encode to the
// same bytes (integers wider than needed, digest entries out of order, a
// zstd block, padding that is not zeros) gets a note with the bytes it
// re-encodes to.
//
//	decode
//	c6 7c 01 03   # envelope: magic, version 1, type 3 (BadCluster)
//	----
//	{
//	  "type": "BadCluster"
//	}
func confWireDecode(t *testing.T, td *datadriven.TestData) string {
	b := confParseHex(t, td)
	m, err := DecodeMessage(b)
	if err != nil {
		return "refused: " + err.Error()
	}
	out := confToJSON(m)
	if again := EncodeMessage(m); !bytes.Equal(again, b) {
		out += fmt.Sprintf("\nnote: re-encodes to %d bytes:\n%s", len(again), confFormatHex(again))
	}
	return out
}

// confWireEncode encodes the message given as JSON and prints the datagram in
// hex; the datagram must decode back to the same message.
//
//	encode
//	{"type": "BadCluster"}
//	----
//	c67c0103
func confWireEncode(t *testing.T, td *datadriven.TestData) string {
	m, err := confFromJSON(td.Input)
	if err != nil {
		td.Fatalf(t, "input: %v", err)
	}
	b := EncodeMessage(m)
	back, err := DecodeMessage(b)
	if err != nil {
		td.Fatalf(t, "the encoding does not decode: %v", err)
	}
	if got, want := confToJSON(back), confToJSON(m); got != want {
		td.Fatalf(t, "round trip changed the message:\n%s\nwant:\n%s", got, want)
	}
	return confFormatHex(b)
}

// confWireSeal builds a sealed datagram from the inner datagram given in hex,
// following docs/PROTOCOL.md §11.13 with a fixed nonce. It is an independent
// implementation: the "open" vectors check that chitchat's code opens what
// the document describes.
//
//	seal key=<32 bytes hex> nonce=<24 bytes hex> counter=<n> sender=<ip:port>
//	     recipient=<ip:port>|any cluster=<id>
//	<inner datagram hex>
//	----
//	aad: <the associated data, hex>
//	<sealed datagram hex>
func confWireSeal(t *testing.T, td *datadriven.TestData) string {
	var keyHex, nonceHex, senderStr, rcptStr, cluster string
	var counter uint64
	td.ScanArgs(t, "key", &keyHex)
	td.ScanArgs(t, "nonce", &nonceHex)
	td.ScanArgs(t, "counter", &counter)
	td.ScanArgs(t, "sender", &senderStr)
	td.ScanArgs(t, "recipient", &rcptStr)
	td.ScanArgs(t, "cluster", &cluster)
	key, nonce := confMustHex(t, td, keyHex), confMustHex(t, td, nonceHex)
	sender := confAddr(t, td, senderStr)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		td.Fatalf(t, "key: %v", err)
	}
	header := confSealHeader(protocolVersion, cluster)
	aad := confSealAAD(header, cluster, confRecipient(t, td, rcptStr))
	plain := binary.BigEndian.AppendUint64(nil, counter)
	ip := sender.Addr().As16()
	plain = append(plain, ip[:]...)
	plain = binary.BigEndian.AppendUint16(plain, sender.Port())
	plain = append(plain, confParseHex(t, td)...)
	out := append(append(header, nonce...), aead.Seal(nil, nonce, plain, aad)...)
	return "aad: " + hex.EncodeToString(aad) + "\n" + confFormatHex(out)
}

// confSealHeader returns the first 8 bytes of a sealed datagram: the
// envelope (magic, version, type e0) and the cluster tag, the first 4
// bytes of SHA-256(cluster id).
func confSealHeader(version byte, cluster string) []byte {
	h := sha256.Sum256([]byte(cluster))
	return append([]byte{0xc6, 0x7c, version, 0xe0}, h[:4]...)
}

// confSealAAD returns the associated data: the header, the cluster id, and
// the recipient's address as 16 bytes of IPv6 (IPv4 mapped) and 2 of port,
// big-endian; "any" recipient is 18 zero bytes.
func confSealAAD(header []byte, cluster string, rcpt netip.AddrPort) []byte {
	aad := append(bytes.Clone(header), cluster...)
	var ip [16]byte
	if rcpt.IsValid() {
		ip = rcpt.Addr().As16()
	}
	aad = append(aad, ip[:]...)
	return binary.BigEndian.AppendUint16(aad, rcpt.Port())
}

// confRecipient parses a recipient: ip:port, or "any" (the zero AddrPort).
func confRecipient(t *testing.T, td *datadriven.TestData, s string) netip.AddrPort {
	if s == "any" {
		return netip.AddrPort{}
	}
	return confAddr(t, td, s)
}

func confAddr(t *testing.T, td *datadriven.TestData, s string) netip.AddrPort {
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		td.Fatalf(t, "%q: %v", s, err)
	}
	return a
}

// confWireOpen opens a sealed datagram with chitchat's own code, as the node
// advertised at self, and prints the authenticated counter and sender and
// whom the datagram was sealed for (self, or any node), then the inner
// message as JSON, or the reason the datagram is dropped.
//
//	open key=<32 bytes hex> cluster=<id> self=<ip:port> [twice]
//	<sealed datagram hex>
//	----
//	counter=<n> sender=<ip:port> recipient=self|any
//	<inner message as JSON>
//	[again: <what opening the same datagram a second time gives>]
func confWireOpen(t *testing.T, td *datadriven.TestData) string {
	var keyHex, cluster, selfStr string
	td.ScanArgs(t, "key", &keyHex)
	td.ScanArgs(t, "cluster", &cluster)
	td.ScanArgs(t, "self", &selfStr)
	self := confAddr(t, td, selfStr)
	var key Key
	if k := confMustHex(t, td, keyHex); copy(key[:], k) != KeySize {
		td.Fatalf(t, "key: %d bytes, want %d", len(k), KeySize)
	}
	ring, err := NewKeyring(key)
	if err != nil {
		td.Fatalf(t, "keyring: %v", err)
	}
	b := confParseHex(t, td)
	if !isSealed(b) {
		return "dropped: not a sealed datagram"
	}
	s := newSealer(ring, cluster, self, 1, 16)
	inner, err := s.open(b, nil)
	if err != nil {
		return "dropped: " + err.Error()
	}
	counter, sender, rcpt := confSealedHeader(t, td, key, cluster, self, b)
	if sender != inner.sender {
		td.Fatalf(t, "chitchat reads sender %v, the test reads %v", inner.sender, sender)
	}
	out := fmt.Sprintf("counter=%d sender=%v recipient=%s\n", counter, sender, rcpt)
	if m, err := DecodeMessage(inner.msg); err != nil {
		out += "refused: " + err.Error()
	} else {
		out += confToJSON(m)
	}
	if td.HasArg("twice") {
		if _, err := s.open(b, nil); err != nil {
			out += "\nagain: dropped: " + err.Error()
		} else {
			out += "\nagain: opened"
		}
	}
	return out
}

// confSealedHeader decrypts b independently of chitchat's code, as sealed
// for self and then for any node, to read the counter and the sender's
// address of its authenticated plaintext, and whom it was sealed for.
func confSealedHeader(t *testing.T, td *datadriven.TestData, key Key, cluster string, self netip.AddrPort, b []byte) (uint64, netip.AddrPort, string) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		td.Fatalf(t, "key: %v", err)
	}
	nonce, ct := b[8:32], b[32:]
	for _, r := range []struct {
		name string
		addr netip.AddrPort
	}{{"self", self}, {"any", netip.AddrPort{}}} {
		plain, err := aead.Open(nil, nonce, ct, confSealAAD(b[:8], cluster, r.addr))
		if err != nil {
			continue
		}
		sender := netip.AddrPortFrom(netip.AddrFrom16([16]byte(plain[8:24])).Unmap(), binary.BigEndian.Uint16(plain[24:26]))
		return binary.BigEndian.Uint64(plain[:8]), sender, r.name
	}
	td.Fatalf(t, "chitchat opened the datagram, but the test cannot")
	return 0, netip.AddrPort{}, ""
}

// confWireRef computes node refs (docs/PROTOCOL.md §3.1) with the test's own
// implementation of the definition, checks that chitchat agrees, and prints
// each ref with the node's bucket at a few bit counts.
//
//	ref
//	NAME GENERATION IP:PORT
//	...
//	----
//	NAME:GENERATION:IP:PORT ref=<16 hex digits> bucket@1=B bucket@2=B bucket@4=B
func confWireRef(t *testing.T, td *datadriven.TestData) string {
	var out []string
	for _, id := range confParseNodes(t, td) {
		ref := confRef(id.id)
		if got := nodeRef(id.id); got != ref {
			td.Fatalf(t, "%v: chitchat's ref %016x, the definition's %016x", id.id, got, ref)
		}
		out = append(out, fmt.Sprintf("%v ref=%016x bucket@1=%d bucket@2=%d bucket@4=%d",
			id.id, ref, ref>>63, ref>>62, ref>>60))
	}
	return strings.Join(out, "\n")
}

// confRef is the ref of id: the first 8 bytes, big-endian, of
// SHA-256("chitchat/ref/v1" ‖ u16 len(name) ‖ name ‖ u64 generation ‖
// ip (4 or 16 bytes) ‖ u16 port).
func confRef(id NodeID) uint64 {
	b := []byte("chitchat/ref/v1")
	b = binary.BigEndian.AppendUint16(b, uint16(len(id.Name)))
	b = append(b, id.Name...)
	b = binary.BigEndian.AppendUint64(b, id.Generation)
	ip := id.Addr.Addr().Unmap()
	b = append(b, ip.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, id.Addr.Port())
	h := sha256.Sum256(b)
	return binary.BigEndian.Uint64(h[:8])
}

// confStateHash is the state hash of a node: the first 8 bytes of
// SHA-256("chitchat/state/v1" ‖ u64 ref ‖ u64 last_gc_version ‖
// u64 max_version ‖ u64 heartbeat>>16), as they go on the wire.
func confStateHash(ref, gc, maxV, hb uint64) [8]byte {
	b := []byte("chitchat/state/v1")
	for _, v := range []uint64{ref, gc, maxV, hb >> 16} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	h := sha256.Sum256(b)
	return [8]byte(h[:8])
}

// confNode is a node of a "summaries" input.
type confNode struct {
	id            NodeID
	heartbeat     uint64
	lastGCVersion uint64
	maxVersion    uint64
}

// confParseNodes reads one node a line: NAME GENERATION IP:PORT, then
// optionally heartbeat=H last_gc_version=G max_version=M.
func confParseNodes(t *testing.T, td *datadriven.TestData) []confNode {
	var nodes []confNode
	for _, line := range strings.Split(td.Input, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			td.Fatalf(t, "%q: want NAME GENERATION IP:PORT [heartbeat=H last_gc_version=G max_version=M]", line)
		}
		var n confNode
		n.id.Name = f[0]
		if _, err := fmt.Sscan(f[1], &n.id.Generation); err != nil {
			td.Fatalf(t, "%q: generation: %v", line, err)
		}
		n.id.Addr = confAddr(t, td, f[2])
		for _, kv := range f[3:] {
			k, v, _ := strings.Cut(kv, "=")
			var p *uint64
			switch k {
			case "heartbeat":
				p = &n.heartbeat
			case "last_gc_version":
				p = &n.lastGCVersion
			case "max_version":
				p = &n.maxVersion
			default:
				td.Fatalf(t, "%q: unknown field %q", line, k)
			}
			if _, err := fmt.Sscan(v, p); err != nil {
				td.Fatalf(t, "%q: %s: %v", line, k, err)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// confWireSummaries computes, with the test's own implementation of
// docs/PROTOCOL.md §3.3, the bucket summaries of a whole-ring coverage at
// the given bits over the nodes given (none listed explicitly), checks
// that chitchat's Engine (whose self node is the first one) computes the
// same, and prints each node's state hash, each summary, and the
// coverage's summaries blob as it goes on the wire.
//
//	summaries bits=B
//	NAME GENERATION IP:PORT heartbeat=H last_gc_version=G max_version=M
//	...
//	----
//	NAME:... ref=<hex> bucket=K state_hash=<8 bytes hex>
//	bucket K: nodes=N hash=<8 bytes hex> heartbeats=H,H
//	blob: <hex>
func confWireSummaries(t *testing.T, td *datadriven.TestData) string {
	var b int
	td.ScanArgs(t, "bits", &b)
	nodes := confParseNodes(t, td)
	if len(nodes) == 0 || b < 0 || b > maxBits {
		td.Fatalf(t, "usage: summaries bits=B (0 to %d), then one node a line", maxBits)
	}
	bits := uint8(b)
	bucket := func(ref uint64) uint32 {
		if bits == 0 {
			return 0
		}
		return uint32(ref >> (64 - bits))
	}
	type member struct {
		ref  uint64
		hash [8]byte
		n    confNode
	}
	byBucket := map[uint32][]member{}
	var out []string
	for _, n := range nodes {
		ref := confRef(n.id)
		h := confStateHash(ref, n.lastGCVersion, n.maxVersion, n.heartbeat)
		byBucket[bucket(ref)] = append(byBucket[bucket(ref)], member{ref, h, n})
		out = append(out, fmt.Sprintf("%v ref=%016x bucket=%d state_hash=%x", n.id, ref, bucket(ref), h))
	}

	// chitchat's side: an Engine whose self is the first node, holding the
	// others as advertised nodes.
	e := confSummaryEngine(t, td, nodes)
	mark := e.nextMark()
	var blob []byte
	want := &Coverage{Bits: bits, Count: 1 << bits}
	for k := uint32(0); k < 1<<bits; k++ {
		ms := byBucket[k]
		if len(ms) == 0 {
			continue
		}
		// In ref order.
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0 && ms[j].ref < ms[j-1].ref; j-- {
				ms[j], ms[j-1] = ms[j-1], ms[j]
			}
		}
		var h [8]byte
		var hbs []string
		var names []string
		blob = binary.AppendUvarint(blob, uint64(k))
		blob = binary.AppendUvarint(blob, uint64(len(ms)))
		for _, m := range ms {
			for i := range h {
				h[i] ^= m.hash[i]
			}
			hbs = append(hbs, fmt.Sprint(uint16(m.n.heartbeat)))
			names = append(names, m.n.id.Name)
		}
		blob = append(blob, h[:]...)
		for _, m := range ms {
			blob = binary.BigEndian.AppendUint16(blob, uint16(m.n.heartbeat))
		}
		var slab []uint16
		got := e.summarize(scenarioEpoch, k, bits, mark, &slab)
		if g := binary.LittleEndian.AppendUint64(nil, got.Hash); !bytes.Equal(g, h[:]) || len(got.Heartbeats) != len(ms) {
			td.Fatalf(t, "bucket %d: chitchat summarizes %d nodes, hash %x; the definition: %d nodes, hash %x",
				k, len(got.Heartbeats), g, len(ms), h)
		}
		for i, m := range ms {
			if got.Heartbeats[i] != uint16(m.n.heartbeat) {
				td.Fatalf(t, "bucket %d: chitchat's heartbeats %v, want the low 16 bits in ref order", k, got.Heartbeats)
			}
		}
		want.Summaries = append(want.Summaries, got)
		out = append(out, fmt.Sprintf("bucket %d: nodes=%s hash=%x heartbeats=%s",
			k, strings.Join(names, ","), h, strings.Join(hbs, ",")))
	}
	enc := appendCoverage(nil, want)
	if !bytes.HasSuffix(enc, blob) || len(enc)-len(blob) != sizeCoverage(want)-len(blob) {
		td.Fatalf(t, "chitchat encodes the coverage as %x; the blob should be %x", enc, blob)
	}
	out = append(out, "blob: "+hex.EncodeToString(blob))
	return strings.Join(out, "\n")
}

// confSummaryEngine returns an Engine whose self is nodes[0], holding the
// others, every one advertised, with the heartbeats and versions given.
func confSummaryEngine(t *testing.T, td *datadriven.TestData, nodes []confNode) *Engine {
	e := confNewEngine(t, td, Config{ID: nodes[0].id, ClusterID: "conformance", DisablePush: true})
	for i, n := range nodes {
		ns := e.selfState()
		if i > 0 {
			if _, dup := e.lookup(n.id); dup {
				td.Fatalf(t, "node %v listed twice", n.id)
			}
			ns = e.createNode(n.id)
		}
		ns.heartbeat, ns.lastGCVersion, ns.maxVersion, ns.evidenced = n.heartbeat, n.lastGCVersion, n.maxVersion, true
	}
	return e
}

// confParseHex reads td.Input as hex, ignoring whitespace and "#" comments.
func confParseHex(t *testing.T, td *datadriven.TestData) []byte {
	var digits strings.Builder
	for _, line := range strings.Split(td.Input, "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return confMustHex(t, td, digits.String())
}

func confMustHex(t *testing.T, td *datadriven.TestData, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		td.Fatalf(t, "bad hex: %v", err)
	}
	return b
}

// confFormatHex renders b as lines of 32 bytes in hex.
func confFormatHex(b []byte) string {
	var lines []string
	for len(b) > 32 {
		lines = append(lines, hex.EncodeToString(b[:32]))
		b = b[32:]
	}
	return strings.Join(append(lines, hex.EncodeToString(b)), "\n")
}
