package transport

// The in-memory network (upstream channel.rs) delivers datagrams between
// Conns of one Network. A single mutex (Network.mu) guards all routing
// state, statistics and the delay queue; it is held only for map lookups,
// counter updates and a non-blocking channel send, never while a Recv
// blocks.
//
// Send path: closed? → size (MaxPayloadSize, MTU) and address family →
// random drop → counted as sent → cut link? → (Delay/Jitter: queue until
// due) → listener? → inbox full? → inbox.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultInboxSize is the per-address inbox capacity used when
// NetworkConfig.InboxSize is 0 (upstream MAX_MESSAGE_PER_CHANNEL).
const DefaultInboxSize = 100

// Ephemeral port range used to pick a port when Open is given port 0.
const (
	firstEphemeralPort = 49152
	lastEphemeralPort  = 65535
)

// NetworkConfig configures an in-memory [Network]. The zero value is a
// perfect network: no MTU, inboxes of 100, no loss, no delay.
type NetworkConfig struct {
	// MTU is the largest datagram Send accepts, in bytes; 0 means no
	// limit beyond UDP's. A larger datagram makes Send return an error
	// containing "exceeds MTU" (matching ErrTooLarge); it is not counted in
	// Stats. Whatever the MTU, a datagram larger than [MaxPayloadSize] is
	// refused as UDP refuses it.
	MTU int

	// InboxSize is the number of undelivered datagrams each open address
	// can hold; 0 means DefaultInboxSize (100). Datagrams arriving at a
	// full inbox are silently dropped and counted (DroppedInboxFull).
	InboxSize int

	// DropProbability in [0, 1] is the independent probability that a Send
	// is dropped (Send still returns nil; counted as DroppedRandom, not as
	// sent). It can be changed later with SetDropProbability.
	DropProbability float64

	// Seed seeds the network's own PCG generator used for drops and
	// jitter. Every seed, including 0, is deterministic: the same seed and
	// the same sequence of calls give the same drops and delays.
	Seed uint64

	// Delay is the base one-way delay of every datagram; 0 delivers into
	// the destination inbox before Send returns.
	Delay time.Duration

	// DualStack lets every endpoint reach both address families, as on
	// hosts whose sockets are all dual-stack. Off (the default), a send
	// across families fails as it does from a UDP socket bound to one.
	DualStack bool

	// Jitter adds a uniform random delay in [0, Jitter) to each datagram.
	// With Jitter > 0 datagrams can be reordered; with Jitter == 0 they
	// are delivered in send order.
	Jitter time.Duration
}

// Validate reports every problem in c, joined with errors.Join.
func (c NetworkConfig) Validate() error {
	var errs []error
	if c.MTU < 0 {
		errs = append(errs, fmt.Errorf("transport: NetworkConfig.MTU must be >= 0, got %d", c.MTU))
	}
	if c.InboxSize < 0 {
		errs = append(errs, fmt.Errorf("transport: NetworkConfig.InboxSize must be >= 0, got %d", c.InboxSize))
	}
	if err := checkProbability(c.DropProbability); err != nil {
		errs = append(errs, fmt.Errorf("transport: NetworkConfig.DropProbability: %w", err))
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("transport: NetworkConfig.Delay must be >= 0, got %v", c.Delay))
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("transport: NetworkConfig.Jitter must be >= 0, got %v", c.Jitter))
	}
	return errors.Join(errs...)
}

func checkProbability(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return fmt.Errorf("probability must be in [0, 1], got %v", p)
	}
	return nil
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb))
}

// Stats counts datagrams and bytes. See Network.Stats for the semantics.
type Stats struct {
	// SentMessages and SentBytes count every Send that passed the MTU
	// check and the random drop, including datagrams then lost to a cut
	// link, a missing listener or a full inbox (upstream semantics).
	SentMessages, SentBytes uint64
	// ReceivedMessages and ReceivedBytes count datagrams returned by Recv.
	ReceivedMessages, ReceivedBytes uint64
	// Drops by cause; DroppedRandom datagrams are not counted as sent.
	DroppedRandom, DroppedCut, DroppedNoListener, DroppedInboxFull uint64
}

// Network is an in-memory datagram network implementing [Transport]. It is
// safe for concurrent use. Addresses are taken literally: there is no
// wildcard (0.0.0.0) or loopback semantics. It is no kinder than UDP: Send
// refuses a datagram larger than [MaxPayloadSize] whatever the MTU, and a
// datagram from an IPv4 address to an IPv6 one or back (see [Conn]).
//
// Under testing/synctest, create the Network and open its Conns inside the
// bubble that uses them: inboxes are channels and Delay/Jitter use a
// time.AfterFunc timer, all owned by the bubble that created them.
type Network struct {
	mtu       int
	dualStack bool
	inboxSize int
	delay     time.Duration
	jitter    time.Duration

	mu        sync.Mutex // guards the fields below
	rng       *rand.Rand
	dropP     float64
	conns     map[netip.AddrPort]*memConn
	listeners map[netip.AddrPort]*memListener // stream listeners (stream.go)
	cuts      map[link]struct{}
	isolated  map[netip.AddrPort]struct{}
	nextPort  uint16
	total     Stats
	nodes     map[netip.AddrPort]*Stats // never deleted: conns and queued datagrams keep pointers
	queue     delayQueue
	seq       uint64
	timer     *time.Timer // fires deliverDue; created on the first delayed datagram
	timerAt   time.Time   // when timer is due; zero when not armed
}

var _ Transport = (*Network)(nil)

// link is an undirected pair of addresses, a <= b.
type link struct{ a, b netip.AddrPort }

func makeLink(a, b netip.AddrPort) link {
	a, b = unmap(a), unmap(b)
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return link{a, b}
}

// NewNetwork returns an empty network configured by cfg.
func NewNetwork(cfg NetworkConfig) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	inbox := cfg.InboxSize
	if inbox == 0 {
		inbox = DefaultInboxSize
	}
	return &Network{
		mtu:       cfg.MTU,
		dualStack: cfg.DualStack,
		inboxSize: inbox,
		delay:     cfg.Delay,
		jitter:    cfg.Jitter,
		rng:       newRand(cfg.Seed),
		dropP:     cfg.DropProbability,
		conns:     make(map[netip.AddrPort]*memConn),
		cuts:      make(map[link]struct{}),
		isolated:  make(map[netip.AddrPort]struct{}),
		nextPort:  firstEphemeralPort,
		nodes:     make(map[netip.AddrPort]*Stats),
	}, nil
}

// Open binds addr on the network. If addr is already open the error
// contains "address not available" and matches syscall.EADDRINUSE. Port 0
// picks an unused port from 49152–65535 (deterministically).
func (n *Network) Open(addr netip.AddrPort) (Conn, error) {
	addr = unmap(addr)
	if !addr.IsValid() {
		return nil, fmt.Errorf("transport: cannot open invalid address %v", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		port, ok := n.freePortLocked(addr.Addr())
		if !ok {
			return nil, fmt.Errorf("transport: no free port on %v: %w", addr.Addr(), syscall.EADDRINUSE)
		}
		addr = netip.AddrPortFrom(addr.Addr(), port)
	}
	if _, used := n.conns[addr]; used {
		return nil, fmt.Errorf("transport: address not available %v: %w", addr, syscall.EADDRINUSE)
	}
	c := &memConn{
		net:   n,
		addr:  addr,
		stats: n.statsLocked(addr),
		inbox: make(chan datagram, n.inboxSize),
		done:  make(chan struct{}),
	}
	n.conns[addr] = c
	return c, nil
}

func (n *Network) freePortLocked(ip netip.Addr) (uint16, bool) {
	for range lastEphemeralPort - firstEphemeralPort + 1 {
		port := n.nextPort
		if n.nextPort == lastEphemeralPort {
			n.nextPort = firstEphemeralPort
		} else {
			n.nextPort++
		}
		if _, used := n.conns[netip.AddrPortFrom(ip, port)]; !used {
			return port, true
		}
	}
	return 0, false
}

func (n *Network) statsLocked(addr netip.AddrPort) *Stats {
	s := n.nodes[addr]
	if s == nil {
		s = new(Stats)
		n.nodes[addr] = s
	}
	return s
}

// Cut blocks both directions between a and b (upstream remove_link).
// Sends over a cut link return nil and count as SentMessages and
// DroppedCut. The cut is checked when the datagram is sent: datagrams
// already delayed in flight are still delivered.
func (n *Network) Cut(a, b netip.AddrPort) {
	n.mu.Lock()
	n.cuts[makeLink(a, b)] = struct{}{}
	n.mu.Unlock()
}

// Restore undoes Cut(a, b) (upstream add_link). It does not undo Isolate.
func (n *Network) Restore(a, b netip.AddrPort) {
	n.mu.Lock()
	delete(n.cuts, makeLink(a, b))
	n.mu.Unlock()
}

// Isolate cuts a from every other address, including addresses opened
// later, until Rejoin(a).
func (n *Network) Isolate(a netip.AddrPort) {
	n.mu.Lock()
	n.isolated[unmap(a)] = struct{}{}
	n.mu.Unlock()
}

// Rejoin undoes Isolate(a). Links cut individually stay cut.
func (n *Network) Rejoin(a netip.AddrPort) {
	n.mu.Lock()
	delete(n.isolated, unmap(a))
	n.mu.Unlock()
}

func (n *Network) blockedLocked(from, to netip.AddrPort) bool {
	if from == to || (len(n.cuts) == 0 && len(n.isolated) == 0) {
		return false
	}
	if _, ok := n.isolated[from]; ok {
		return true
	}
	if _, ok := n.isolated[to]; ok {
		return true
	}
	_, ok := n.cuts[makeLink(from, to)]
	return ok
}

// SetDropProbability changes the random drop probability (in [0, 1]).
func (n *Network) SetDropProbability(p float64) error {
	if err := checkProbability(p); err != nil {
		return fmt.Errorf("transport: SetDropProbability: %w", err)
	}
	n.mu.Lock()
	n.dropP = p
	n.mu.Unlock()
	return nil
}

// Stats returns the totals over all addresses since creation or the last
// ResetStats.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.total
}

// NodeStats returns the counters of one address: Sent* and Dropped* count
// datagrams it sent (drops are charged to the sender), Received* count
// datagrams its Conns returned from Recv. Counters survive Close and
// reopening. An address never used has zero Stats.
func (n *Network) NodeStats(addr netip.AddrPort) Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.nodes[unmap(addr)]; s != nil {
		return *s
	}
	return Stats{}
}

// ResetStats zeroes the totals and every per-address counter.
func (n *Network) ResetStats() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.total = Stats{}
	for _, s := range n.nodes {
		*s = Stats{}
	}
}

// send implements memConn.Send. The closed check is made under n.mu, which
// Close takes too, so nothing is sent or counted once Close has returned.
func (n *Network) send(from *memConn, to netip.AddrPort, b []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if from.closed.Load() {
		return ErrClosed
	}
	if err := from.precheck(to, len(b)); err != nil {
		return err
	}
	st := from.stats
	if n.dropP > 0 && n.rng.Float64() < n.dropP {
		n.total.DroppedRandom++
		st.DroppedRandom++
		return nil
	}
	size := uint64(len(b))
	n.total.SentMessages++
	n.total.SentBytes += size
	st.SentMessages++
	st.SentBytes += size
	if n.blockedLocked(from.addr, to) {
		n.total.DroppedCut++
		st.DroppedCut++
		return nil
	}
	p := getBuf(b)
	if n.delay == 0 && n.jitter == 0 {
		n.deliverLocked(datagram{from: from.addr, buf: p}, to, st)
		return nil
	}
	d := n.delay
	if n.jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	n.scheduleLocked(delayed{
		at: time.Now().Add(d), to: to, sender: st,
		dg: datagram{from: from.addr, buf: p},
	})
	return nil
}

// deliverLocked puts dg into the inbox of the Conn currently open on to,
// or drops it and charges the drop to sender.
func (n *Network) deliverLocked(dg datagram, to netip.AddrPort, sender *Stats) {
	dst := n.conns[to]
	if dst == nil {
		n.total.DroppedNoListener++
		sender.DroppedNoListener++
		putBuf(dg.buf)
		return
	}
	select {
	case dst.inbox <- dg:
	default:
		n.total.DroppedInboxFull++
		sender.DroppedInboxFull++
		putBuf(dg.buf)
	}
}

// scheduleLocked queues a delayed datagram and arms the timer if it is now
// the earliest.
func (n *Network) scheduleLocked(d delayed) {
	n.seq++
	d.seq = n.seq
	n.queue.push(d)
	switch {
	case n.timer == nil:
		n.timer = time.AfterFunc(time.Until(d.at), n.deliverDue)
		n.timerAt = d.at
	case n.timerAt.IsZero() || d.at.Before(n.timerAt):
		n.timer.Reset(time.Until(d.at))
		n.timerAt = d.at
	}
}

// deliverDue runs on the timer: it delivers every queued datagram that is
// due, in (due time, send order), and re-arms the timer for the next one.
// The listener is looked up now, so a datagram to an address closed while
// it was in flight is dropped (DroppedNoListener), and one to an address
// reopened meanwhile reaches the new Conn.
func (n *Network) deliverDue() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for len(n.queue) > 0 && !n.queue[0].at.After(now) {
		d := n.queue.pop()
		n.deliverLocked(d.dg, d.to, d.sender)
	}
	if len(n.queue) == 0 {
		n.timerAt = time.Time{}
		return
	}
	n.timerAt = n.queue[0].at
	n.timer.Reset(n.timerAt.Sub(now))
}

func (n *Network) received(c *memConn, size int) {
	n.mu.Lock()
	n.total.ReceivedMessages++
	n.total.ReceivedBytes += uint64(size)
	c.stats.ReceivedMessages++
	c.stats.ReceivedBytes += uint64(size)
	n.mu.Unlock()
}

func (n *Network) close(c *memConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed.Load() {
		return
	}
	c.closed.Store(true)
	delete(n.conns, c.addr)
	close(c.done)
}

type datagram struct {
	from netip.AddrPort
	buf  *[]byte // pooled copy of the payload
}

type memConn struct {
	net    *Network
	addr   netip.AddrPort
	stats  *Stats // n.nodes[addr]; guarded by net.mu
	inbox  chan datagram
	done   chan struct{} // closed by Close
	closed atomic.Bool   // set under net.mu
}

func (c *memConn) LocalAddr() netip.AddrPort { return c.addr }

func (c *memConn) Send(to netip.AddrPort, b []byte) error {
	return c.net.send(c, unmap(to), b)
}

// precheck refuses what UDP refuses: a datagram larger than MaxPayloadSize
// (or the MTU), and one across address families. Addresses are literal
// here, so an IPv6 wildcard is an IPv6 address like any other.
func (c *memConn) precheck(to netip.AddrPort, size int) error {
	if err := checkSize(to, size); err != nil {
		return err
	}
	if mtu := c.net.mtu; mtu > 0 && size > mtu {
		return fmt.Errorf("transport: datagram of %d bytes exceeds MTU %d: %w", size, mtu, ErrTooLarge)
	}
	if c.addr.Addr().Is4() != unmap(to).Addr().Is4() && !c.net.dualStack {
		return familyError(c.addr, to)
	}
	return nil
}

func (c *memConn) Recv(buf []byte) (int, netip.AddrPort, error) {
	if c.closed.Load() {
		return 0, netip.AddrPort{}, ErrClosed
	}
	var dg datagram
	select {
	case dg = <-c.inbox:
	case <-c.done:
		return 0, netip.AddrPort{}, ErrClosed
	}
	defer putBuf(dg.buf)
	if c.closed.Load() { // closed while both cases were ready
		return 0, netip.AddrPort{}, ErrClosed
	}
	p := *dg.buf
	if len(p) > len(buf) {
		return 0, dg.from, &transientError{fmt.Errorf(
			"transport: dropped %d-byte datagram from %v larger than the %d-byte buffer: %w",
			len(p), dg.from, len(buf), ErrTooLarge)}
	}
	n := copy(buf, p)
	c.net.received(c, n)
	return n, dg.from, nil
}

func (c *memConn) Close() error {
	c.net.close(c)
	return nil
}

// Payload copies are pooled so that a steady send/recv flow does not
// allocate. Buffers above maxPooled are left to the GC.
const maxPooled = 1 << 17

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf(b []byte) *[]byte {
	p := bufPool.Get().(*[]byte)
	*p = append((*p)[:0], b...)
	return p
}

func putBuf(p *[]byte) {
	if cap(*p) <= maxPooled {
		bufPool.Put(p)
	}
}

// delayed is a datagram waiting in the delay queue.
type delayed struct {
	at     time.Time
	seq    uint64 // send order; breaks ties so equal delays stay FIFO
	to     netip.AddrPort
	sender *Stats
	dg     datagram
}

func (d *delayed) before(e *delayed) bool {
	if !d.at.Equal(e.at) {
		return d.at.Before(e.at)
	}
	return d.seq < e.seq
}

// delayQueue is a binary min-heap ordered by (at, seq). It is hand-written
// rather than container/heap to avoid boxing every element.
type delayQueue []delayed

func (q *delayQueue) push(d delayed) {
	*q = append(*q, d)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(&h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *delayQueue) pop() delayed {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = delayed{}
	h = h[:last]
	for i := 0; ; {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].before(&h[smallest]) {
			smallest = l
		}
		if r < len(h) && h[r].before(&h[smallest]) {
			smallest = r
		}
		if smallest == i {
			break
		}
		h[i], h[smallest] = h[smallest], h[i]
		i = smallest
	}
	*q = h
	return top
}
