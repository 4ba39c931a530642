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
	}
	td.Fatalf(t, "unknown command %q (want decode, encode, seal or open)", td.Cmd)
	return ""
}

// confWireDecode decodes a datagram and prints the message as JSON, or the
// decoder's refusal. A datagram that decodes but does not re-encode to the
// same bytes (integers wider than needed, digest entries out of order, a
// zstd block) gets a note with the bytes it re-encodes to.
//
//	decode
//	c6 7c 00 03   # envelope: magic, version 0, type 3 (BadCluster)
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
//	c67c0003
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
// following docs/PROTOCOL.md's description of the format with a fixed nonce
// (this is an independent implementation: the "open" vectors check that
// chitchat's opens what it describes).
//
//	seal key=<32 bytes hex> nonce=<24 bytes hex> counter=<n> sender=<ip:port> cluster=<id>
//	<inner datagram hex>
//	----
//	<sealed datagram hex>
func confWireSeal(t *testing.T, td *datadriven.TestData) string {
	var keyHex, nonceHex, senderStr, cluster string
	var counter uint64
	td.ScanArgs(t, "key", &keyHex)
	td.ScanArgs(t, "nonce", &nonceHex)
	td.ScanArgs(t, "counter", &counter)
	td.ScanArgs(t, "sender", &senderStr)
	td.ScanArgs(t, "cluster", &cluster)
	key, nonce := confMustHex(t, td, keyHex), confMustHex(t, td, nonceHex)
	sender, err := netip.ParseAddrPort(senderStr)
	if err != nil {
		td.Fatalf(t, "sender: %v", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		td.Fatalf(t, "key: %v", err)
	}
	tag := confClusterTag(cluster)
	header := append([]byte{0xc6, 0x7c, 0x00, 0xe0}, tag[:]...)
	aad := append(bytes.Clone(header), cluster...)
	plain := binary.BigEndian.AppendUint64(nil, counter)
	ip := sender.Addr().As16()
	plain = append(plain, ip[:]...)
	plain = binary.BigEndian.AppendUint16(plain, sender.Port())
	plain = append(plain, confParseHex(t, td)...)
	out := append(append(header, nonce...), aead.Seal(nil, nonce, plain, aad)...)
	return confFormatHex(out)
}

// confWireOpen opens a sealed datagram with chitchat's own code and prints the
// authenticated counter and sender, then the inner message as JSON, or the
// reason the datagram is dropped.
//
//	open key=<32 bytes hex> cluster=<id> [twice]
//	<sealed datagram hex>
//	----
//	counter=<n> sender=<ip:port>
//	<inner message as JSON>
//	[again: <what opening the same datagram a second time gives>]
func confWireOpen(t *testing.T, td *datadriven.TestData) string {
	var keyHex, cluster string
	td.ScanArgs(t, "key", &keyHex)
	td.ScanArgs(t, "cluster", &cluster)
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
		return "dropped: not a sealed confDatagram"
	}
	s := newSealer(ring, cluster, netip.MustParseAddrPort("127.0.0.1:1"), 1, 16)
	inner, err := s.open(b, nil)
	if err != nil {
		return "dropped: " + err.Error()
	}
	counter, sender := confSealedHeader(t, td, ring, cluster, b)
	out := fmt.Sprintf("counter=%d sender=%v\n", counter, sender)
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

// confSealedHeader decrypts b with the primary key to read the counter and the
// sender's address of its authenticated plaintext.
func confSealedHeader(t *testing.T, td *datadriven.TestData, ring *Keyring, cluster string, b []byte) (uint64, netip.AddrPort) {
	aad := append(bytes.Clone(b[:envelopeSize+4]), cluster...)
	plain, err := ring.load().aeads[0].Open(nil, b[envelopeSize+4:sealHeader], b[sealHeader:], aad)
	if err != nil {
		td.Fatalf(t, "the confDatagram opened but not with the primary key: %v", err)
	}
	sender := netip.AddrPortFrom(netip.AddrFrom16([16]byte(plain[8:24])).Unmap(), binary.BigEndian.Uint16(plain[24:26]))
	return binary.BigEndian.Uint64(plain[:8]), sender
}

// confClusterTag is the cluster tag of a sealed datagram: the first 4 bytes
// of the SHA-256 of the cluster id.
func confClusterTag(cluster string) [4]byte {
	h := sha256.Sum256([]byte(cluster))
	return [4]byte(h[:4])
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
