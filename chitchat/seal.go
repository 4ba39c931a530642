package chitchat

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Encrypted datagram (docs/PROTOCOL.md §11.13):
//
//	envelope(4: magic, version, typeSealed) cluster-tag(4) nonce(24) ciphertext
//	ciphertext = XChaCha20-Poly1305(primary key, nonce,
//	             plaintext = counter(8) sender-ip(16) sender-port(2) message,
//	             associated data = envelope ++ cluster-tag ++ cluster id ++
//	                               recipient-ip(16) recipient-port(2))
//
// The cluster id is bound as associated data, so a datagram sealed for
// another cluster never opens; the clear cluster tag (4 bytes of SHA-256 of
// the id) only lets the receiver count that case apart from a wrong key.
// The recipient's advertised address is bound too, so a datagram sealed for
// B does not open at C: a recorded datagram cannot be replayed to another
// node. The all-zero recipient ("any") is accepted only on a Syn and a Push:
// it is what a node sends to a seed address that is not a known node's (the
// seed may advertise another address than the one it is reached at). The counter and
// the sender's advertised address are inside the authenticated plaintext:
// they drive a per-sender anti-replay window, and replies go to that
// authenticated address, never to the UDP source, so a replayed datagram
// with a spoofed source reflects nothing at a victim.

const (
	typeSealed   = 0xe0 // message type of an encrypted datagram
	sealHeader   = envelopeSize + 4 + chacha20poly1305.NonceSizeX
	sealInner    = 8 + 16 + 2
	sealOverhead = sealHeader + sealInner + chacha20poly1305.Overhead // 74 bytes
	// replaySet is the number of counters a replay window remembers
	// above its floor: a datagram overtaken by this many later ones from
	// the same sender is refused.
	replaySet = 32
	// maxCounterLead is how far ahead of the receiver's clock a counter
	// may be. Counters are times in nanoseconds (seal), so a key holder
	// that seals a datagram under another sender's address with a huge
	// counter blocks that sender's datagrams at the receiver for at most
	// this long, not for good; and the clocks of the nodes of a keyed
	// cluster must agree within it (Kerberos asks for 5 minutes).
	maxCounterLead = 2 * time.Minute
)

// Errors of opening a datagram; the server counts each kind.
var (
	errWrongCluster = errors.New("chitchat: encrypted datagram of another cluster")
	errAuth         = errors.New("chitchat: datagram failed authentication")
	errReplay       = errors.New("chitchat: replayed datagram")
	errFuture       = errors.New("chitchat: datagram counter ahead of our clock (the sender's clock is more than 2m ahead, or a forgery)")
	errPlaintext    = errors.New("chitchat: unencrypted datagram refused")
)

// recipientSize is the size of an address in the associated data.
const recipientSize = 16 + 2

// sealer encrypts and decrypts datagrams for one node. Not safe for
// concurrent use of open; seal may run concurrently with open.
type sealer struct {
	ring       *Keyring
	clusterID  string
	clusterTag [4]byte
	aad        []byte // envelope ++ cluster tag ++ cluster id; read-only
	self       netip.AddrPort
	counter    atomic.Uint64 // last counter sent
	// clock returns the time in nanoseconds that counters follow.
	clock   func() uint64
	aadBufs sync.Pool // of *[]byte: associated data being built by seal
	// mu guards windows: streams open frames concurrently with the
	// datagram loop.
	mu      sync.Mutex
	windows *replayWindows
}

func newSealer(ring *Keyring, clusterID string, self netip.AddrPort, counterBase uint64, maxSenders int) *sealer {
	h := sha256.Sum256([]byte(clusterID))
	s := &sealer{
		ring:       ring,
		clusterID:  clusterID,
		clusterTag: [4]byte(h[:4]),
		self:       self,
		windows:    newReplayWindows(maxSenders),
	}
	s.aad = append(append([]byte{magic0, magic1, protocolVersion, typeSealed}, s.clusterTag[:]...), clusterID...)
	// Counters follow the clock in nanoseconds (and never go back): a
	// restarted sender, with a clock that did not go back, continues above
	// its old window, and receivers can bound how far ahead a counter may
	// be (maxCounterLead).
	s.counter.Store(counterBase)
	return s
}

func isSealed(b []byte) bool {
	return len(b) >= envelopeSize && b[0] == magic0 && b[1] == magic1 && b[3] == typeSealed
}

// appendRecipient appends the associated-data form of an address: IPv4
// addresses as IPv4-mapped IPv6, the zero AddrPort as 18 zero bytes.
func appendRecipient(b []byte, a netip.AddrPort) []byte {
	var ip [16]byte
	if a.Addr().IsValid() {
		ip = a.Addr().As16()
	}
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// seal appends to dst the encrypted form of msg for the node advertised at
// to (the zero AddrPort: any node, for a Syn to a seed). It is safe for
// concurrent use.
func (s *sealer) seal(dst, msg []byte, to netip.AddrPort) []byte {
	counter := s.nextCounter()
	set := s.ring.load()
	bp, _ := s.aadBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	aad := appendRecipient(append((*bp)[:0], s.aad...), to)
	defer func() { *bp = aad[:0]; s.aadBufs.Put(bp) }()
	dst = append(dst, s.aad[:envelopeSize+4]...)
	n := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[n:]
	rand.Read(nonce) // never fails (crypto/rand)
	// The plaintext is written after the header and sealed in place: with
	// room for the tag in dst, no copy of msg is made.
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, counter)
	ip := s.self.Addr().As16()
	dst = append(dst, ip[:]...)
	dst = binary.BigEndian.AppendUint16(dst, s.self.Port())
	dst = append(dst, msg...)
	return set.aeads[0].Seal(dst[:start], nonce, dst[start:], aad)
}

// nextCounter returns the counter of the next datagram: the clock in
// nanoseconds, or one more than the last counter if that is larger.
func (s *sealer) nextCounter() uint64 {
	var now uint64
	if s.clock != nil {
		now = s.clock()
	}
	for {
		last := s.counter.Load()
		next := max(last+1, now)
		if s.counter.CompareAndSwap(last, next) {
			return next
		}
	}
}

// opened is a datagram that passed authentication.
type opened struct {
	msg    []byte         // the inner message
	sender netip.AddrPort // the sender's advertised address, authenticated
}

// open authenticates and decrypts a sealed datagram addressed to us (or,
// for a Syn, to any node) and returns the inner message and its
// authenticated sender. scratch is reused for the plaintext. It is safe for
// concurrent use.
func (s *sealer) open(b, scratch []byte) (opened, error) {
	if len(b) < sealOverhead {
		return opened{}, errAuth
	}
	if [4]byte(b[envelopeSize:envelopeSize+4]) != s.clusterTag {
		return opened{}, errWrongCluster
	}
	nonce := b[envelopeSize+4 : sealHeader]
	bp, _ := s.aadBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	aad := append((*bp)[:0], s.aad...)
	defer func() { *bp = aad[:0]; s.aadBufs.Put(bp) }()
	if string(b[:envelopeSize+4]) != string(aad[:envelopeSize+4]) {
		// Another protocol version: authenticate the envelope as sent.
		aad = append(append(aad[:0], b[:envelopeSize+4]...), s.clusterID...)
	}
	base := len(aad)
	aad = appendRecipient(aad, s.self)
	plain, err := s.openAs(b, nonce, aad, scratch)
	anyRecipient := false
	if err != nil {
		aad = appendRecipient(aad[:base], netip.AddrPort{})
		plain, err = s.openAs(b, nonce, aad, scratch)
		anyRecipient = true
	}
	if err != nil {
		return opened{}, errAuth
	}
	msg := plain[sealInner:]
	if anyRecipient && (len(msg) < envelopeSize || (MessageType(msg[3]) != TypeSyn && MessageType(msg[3]) != TypePush)) {
		// Only what goes to a seed address may be addressed to any node:
		// a Syn, and a joining node's announcement (a Push).
		return opened{}, errAuth
	}
	counter := binary.BigEndian.Uint64(plain[:8])
	if s.clock != nil && counter > s.clock()+uint64(maxCounterLead) {
		return opened{}, errFuture
	}
	sender := netip.AddrPortFrom(netip.AddrFrom16([16]byte(plain[8:24])).Unmap(), binary.BigEndian.Uint16(plain[24:26]))
	s.mu.Lock()
	fresh := s.windows.accept(sender, counter)
	s.mu.Unlock()
	if !fresh {
		return opened{}, errReplay
	}
	return opened{msg: msg, sender: sender}, nil
}

// openAs tries every key of the ring with the given associated data.
func (s *sealer) openAs(b, nonce, aad, scratch []byte) ([]byte, error) {
	for _, aead := range s.ring.load().aeads {
		if plain, err := aead.Open(scratch[:0], nonce, b[sealHeader:], aad); err == nil {
			return plain, nil
		}
	}
	return nil, errAuth
}

// replayWindows tracks, per sender, a floor and the counters above it that
// were accepted (at most replaySet): a counter at or below the floor, or in
// the set, is a replay. When the set is full, its smallest counter leaves
// and becomes the floor. Counters follow the sender's clock in nanoseconds,
// so consecutive datagrams are far apart in counter space: a window is a set
// of counters, not a bitmap of the last N. A forged counter just under
// maxCounterLead ahead raises the floor only if replaySet+1 of them fill the
// set, and then only until the sender's clock passes it.
//
// Senders are evicted oldest first beyond max, which bounds memory (272
// bytes per sender); an evicted sender's old datagrams could then be
// replayed once, above the floor it had.
type replayWindows struct {
	max     int
	byAddr  map[netip.AddrPort]*window
	order   []netip.AddrPort // insertion order, for eviction
	evicted uint64
}

type window struct {
	floor uint64
	n     int
	seen  [replaySet]uint64 // seen[:n], unordered, all above floor
}

func newReplayWindows(max int) *replayWindows {
	return &replayWindows{max: max, byAddr: make(map[netip.AddrPort]*window)}
}

// accept reports whether counter is new for sender, and records it.
func (r *replayWindows) accept(sender netip.AddrPort, counter uint64) bool {
	w, ok := r.byAddr[sender]
	if !ok {
		if len(r.byAddr) >= r.max {
			oldest := r.order[0]
			r.order = r.order[1:]
			delete(r.byAddr, oldest)
			r.evicted++
		}
		w = &window{}
		r.byAddr[sender] = w
		r.order = append(r.order, sender)
	}
	return w.accept(counter)
}

// accept reports whether counter is new, and records it.
func (w *window) accept(counter uint64) bool {
	if counter <= w.floor {
		return false
	}
	lo := 0
	for i, c := range w.seen[:w.n] {
		if c == counter {
			return false
		}
		if c < w.seen[lo] {
			lo = i
		}
	}
	switch {
	case w.n < replaySet:
		w.seen[w.n] = counter
		w.n++
	case counter < w.seen[lo]:
		w.floor = counter // accepted, and at once the smallest remembered
	default:
		w.floor = w.seen[lo]
		w.seen[lo] = counter
	}
	return true
}
