package chitchat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"unicode/utf8"
)

// This file holds the MessagePack primitives of the wire format. They are
// written by hand, append-style, instead of going through a reflective codec:
// the gossip hot path (digests of up to thousands of entries, several times a
// second) then encodes with zero allocations, and the decoder checks every
// length against the bytes that remain before it allocates anything, so a
// hostile datagram cannot make it allocate more than its own size.
// The output is standard MessagePack; interop_test.go checks it against
// github.com/vmihailenco/msgpack/v5 in both directions, and
// docs/PROTOCOL.md §12 gives the figures behind writing it by hand.

// MessagePack type codes used by the wire format.
const (
	mpPosFixintMax = 0x7f
	mpFixArray     = 0x90
	mpFixStr       = 0xa0
	mpBin8         = 0xc4
	mpBin16        = 0xc5
	mpBin32        = 0xc6
	mpUint8        = 0xcc
	mpUint16       = 0xcd
	mpUint32       = 0xce
	mpUint64       = 0xcf
	mpInt8         = 0xd0
	mpInt16        = 0xd1
	mpInt32        = 0xd2
	mpInt64        = 0xd3
	mpStr8         = 0xd9
	mpStr16        = 0xda
	mpStr32        = 0xdb
	mpArray16      = 0xdc
	mpArray32      = 0xdd
)

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, mpFixArray|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpArray16, byte(n>>8), byte(n))
	default:
		return append(b, mpArray32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func sizeArrayHeader(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= math.MaxUint16:
		return 3
	default:
		return 5
	}
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= mpPosFixintMax:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, mpUint32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		b = append(b, mpUint64)
		return binary.BigEndian.AppendUint64(b, v)
	}
}

func sizeUint(v uint64) int {
	switch {
	case v <= mpPosFixintMax:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, mpFixStr|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpStr16, byte(n>>8), byte(n))
	default:
		b = append(b, mpStr32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func sizeStr(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

func appendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		return append(b, mpBin16, byte(n>>8), byte(n))
	default:
		return append(b, mpBin32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func sizeBin(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	default:
		return 5 + n
	}
}

// appendAddr encodes an address as a bin of 6 (IPv4) or 18 (IPv6) bytes: the
// address bytes, then the port big-endian. 8 bytes for IPv4 on the wire,
// against 7 in upstream's binary format and ~20 for a "1.2.3.4:5" string.
func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr()
	if ip.Is4() {
		b = append(b, mpBin8, 6)
		v4 := ip.As4()
		b = append(b, v4[:]...)
	} else {
		b = append(b, mpBin8, 18)
		v6 := ip.As16()
		b = append(b, v6[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port())
}

func sizeAddr(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return 8
	}
	return 20
}

// DecodeError reports a malformed datagram. Offset is the byte offset, within
// the decoded buffer, where decoding failed.
type DecodeError struct {
	Offset int
	Reason string
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("chitchat: decode at offset %d: %s: %v", e.Offset, e.Reason, e.Err)
	}
	return fmt.Sprintf("chitchat: decode at offset %d: %s", e.Offset, e.Reason)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// errTruncated is wrapped by DecodeErrors caused by missing bytes.
var errTruncated = errors.New("truncated input")

// reader decodes MessagePack from a byte slice. Every method checks lengths
// against the remaining input before slicing or allocating.
type reader struct {
	b   []byte
	off int
	// maxStream caps the decoded op stream of a delta (0: maxDeltaStream).
	maxStream int
}

// nilValue consumes a MessagePack nil if one is next.
func (r *reader) nilValue() bool {
	if r.off < len(r.b) && r.b[r.off] == mpNil {
		r.off++
		return true
	}
	return false
}

// binNext reports whether a MessagePack bin is next.
func (r *reader) binNext() bool {
	return r.off < len(r.b) && (r.b[r.off] == mpBin8 || r.b[r.off] == mpBin16 || r.b[r.off] == mpBin32)
}

// uintNext reports whether a MessagePack unsigned integer is next.
func (r *reader) uintNext() bool {
	if r.off >= len(r.b) {
		return false
	}
	c := r.b[r.off]
	return c <= 0x7f || (c >= mpUint8 && c <= mpUint64)
}

// streamLimit returns the cap on a delta's decoded op stream.
func (r *reader) streamLimit() int {
	if r.maxStream > 0 {
		return r.maxStream
	}
	return maxDeltaStream
}

func (r *reader) fail(reason string) error {
	return &DecodeError{Offset: r.off, Reason: reason}
}

func (r *reader) truncated(what string) error {
	return &DecodeError{Offset: r.off, Reason: what, Err: errTruncated}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) byte1(what string) (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.truncated(what)
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// take returns the next n bytes without copying.
func (r *reader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, r.truncated(what)
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) be(n int, what string) (uint64, error) {
	p, err := r.take(n, what)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// arrayHeader reads an array header. minElem is the smallest encoded size of
// one element: a count that could not possibly fit in the remaining input is
// rejected here, before the caller allocates for it.
func (r *reader) arrayHeader(what string, minElem int) (int, error) {
	c, err := r.byte1(what)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == mpFixArray:
		n = uint64(c & 0x0f)
	case c == mpArray16:
		n, err = r.be(2, what)
	case c == mpArray32:
		n, err = r.be(4, what)
	default:
		r.off--
		return 0, r.fail(fmt.Sprintf("%s: want array, got code 0x%02x", what, c))
	}
	if err != nil {
		return 0, err
	}
	if minElem < 1 {
		minElem = 1
	}
	if n > uint64(r.remaining()/minElem) {
		return 0, r.truncated(fmt.Sprintf("%s: %d elements", what, n))
	}
	return int(n), nil
}

// fixArray reads an array header and checks it has exactly n elements.
func (r *reader) fixArray(what string, n int) error {
	start := r.off
	got, err := r.arrayHeader(what, 1)
	if err != nil {
		return err
	}
	if got != n {
		r.off = start
		return r.fail(fmt.Sprintf("%s: want %d fields, got %d", what, n, got))
	}
	return nil
}

// fixArrayOf reads an array header of lo to hi elements and returns the
// count.
func (r *reader) fixArrayOf(what string, lo, hi int) (int, error) {
	start := r.off
	got, err := r.arrayHeader(what, 1)
	if err != nil {
		return 0, err
	}
	if got < lo || got > hi {
		r.off = start
		return 0, r.fail(fmt.Sprintf("%s: want %d to %d fields, got %d", what, lo, hi, got))
	}
	return got, nil
}

// uint reads a non-negative integer in any MessagePack integer encoding.
func (r *reader) uint(what string) (uint64, error) {
	c, err := r.byte1(what)
	if err != nil {
		return 0, err
	}
	if c <= mpPosFixintMax {
		return uint64(c), nil
	}
	var v uint64
	signed := false
	switch c {
	case mpUint8:
		v, err = r.be(1, what)
	case mpUint16:
		v, err = r.be(2, what)
	case mpUint32:
		v, err = r.be(4, what)
	case mpUint64:
		v, err = r.be(8, what)
	case mpInt8:
		v, err = r.be(1, what)
		signed = v&0x80 != 0
	case mpInt16:
		v, err = r.be(2, what)
		signed = v&0x8000 != 0
	case mpInt32:
		v, err = r.be(4, what)
		signed = v&0x80000000 != 0
	case mpInt64:
		v, err = r.be(8, what)
		signed = v&(1<<63) != 0
	default:
		r.off--
		return 0, r.fail(fmt.Sprintf("%s: want unsigned integer, got code 0x%02x", what, c))
	}
	if err != nil {
		return 0, err
	}
	if signed {
		return 0, r.fail(what + ": negative integer")
	}
	return v, nil
}

// strBytes reads a string and returns its bytes without copying. The bytes
// must be valid UTF-8, as upstream requires.
func (r *reader) strBytes(what string) ([]byte, error) {
	c, err := r.byte1(what)
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c&0xe0 == mpFixStr:
		n = uint64(c & 0x1f)
	case c == mpStr8:
		n, err = r.be(1, what)
	case c == mpStr16:
		n, err = r.be(2, what)
	case c == mpStr32:
		n, err = r.be(4, what)
	default:
		r.off--
		return nil, r.fail(fmt.Sprintf("%s: want string, got code 0x%02x", what, c))
	}
	if err != nil {
		return nil, err
	}
	p, err := r.take(int(min(n, math.MaxInt32)), what)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(p) {
		r.off -= len(p)
		return nil, r.fail(what + ": invalid UTF-8")
	}
	return p, nil
}

func (r *reader) str(what string) (string, error) {
	p, err := r.strBytes(what)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// bin reads a byte array and returns it without copying.
func (r *reader) bin(what string) ([]byte, error) {
	c, err := r.byte1(what)
	if err != nil {
		return nil, err
	}
	var n uint64
	switch c {
	case mpBin8:
		n, err = r.be(1, what)
	case mpBin16:
		n, err = r.be(2, what)
	case mpBin32:
		n, err = r.be(4, what)
	default:
		r.off--
		return nil, r.fail(fmt.Sprintf("%s: want bytes, got code 0x%02x", what, c))
	}
	if err != nil {
		return nil, err
	}
	return r.take(int(min(n, math.MaxInt32)), what)
}

func (r *reader) addr(what string) (netip.AddrPort, error) {
	start := r.off
	p, err := r.bin(what)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ip netip.Addr
	switch len(p) {
	case 6:
		ip = netip.AddrFrom4([4]byte(p[:4]))
	case 18:
		ip = netip.AddrFrom16([16]byte(p[:16])).Unmap()
	default:
		r.off = start
		return netip.AddrPort{}, r.fail(fmt.Sprintf("%s: address of %d bytes, want 6 or 18", what, len(p)))
	}
	port := binary.BigEndian.Uint16(p[len(p)-2:])
	return netip.AddrPortFrom(ip, port), nil
}
