package transport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Lossy wraps t so that each Send on its Conns is dropped independently
// with probability p in [0, 1] (upstream TransportExt::drop_message): a
// dropped Send returns nil and never reaches the inner Conn. A Send the
// inner Conn would refuse (too large, another address family) fails
// whether or not it would have been dropped, and draws no random number.
// Recv is
// unchanged. All Conns share one PCG generator seeded with seed, so the
// same seed and the same sequence of Sends drop the same datagrams.
func Lossy(t Transport, p float64, seed uint64) (Transport, error) {
	if t == nil {
		return nil, errors.New("transport: Lossy: nil Transport")
	}
	if err := checkProbability(p); err != nil {
		return nil, fmt.Errorf("transport: Lossy: %w", err)
	}
	return &lossy{inner: t, p: p, rng: newRand(seed)}, nil
}

type lossy struct {
	inner Transport
	p     float64
	mu    sync.Mutex // guards rng
	rng   *rand.Rand
}

func (l *lossy) Open(addr netip.AddrPort) (Conn, error) {
	c, err := l.inner.Open(addr)
	if err != nil {
		return nil, err
	}
	return &lossyConn{Conn: c, l: l}, nil
}

func (l *lossy) drop() bool {
	if l.p == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Float64() < l.p
}

type lossyConn struct {
	Conn
	l      *lossy
	closed atomic.Bool
}

func (c *lossyConn) Send(to netip.AddrPort, b []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := precheck(c.Conn, to, len(b)); err != nil {
		return err
	}
	if c.l.drop() {
		return nil
	}
	return c.Conn.Send(to, b)
}

func (c *lossyConn) precheck(to netip.AddrPort, size int) error {
	return precheck(c.Conn, to, size)
}

func (c *lossyConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// Counter wraps a Transport and counts, with atomics, the datagrams and
// bytes its Conns send and receive. Only successful calls count: a Send
// that returned nil (even if the network then lost the datagram) and a Recv
// that returned a datagram. Wrapping order matters: Counting(Lossy(t, ...))
// counts attempted sends, Lossy(Counting(t), ...) only those not dropped.
type Counter struct {
	inner Transport
	total counts
}

// Counting returns a Counter wrapping t. Its Open returns *CountingConn.
func Counting(t Transport) *Counter { return &Counter{inner: t} }

var _ Transport = (*Counter)(nil)

// Open opens addr on the inner Transport; the Conn is a *CountingConn.
func (c *Counter) Open(addr netip.AddrPort) (Conn, error) {
	inner, err := c.inner.Open(addr)
	if err != nil {
		return nil, err
	}
	return &CountingConn{inner: inner, total: &c.total}, nil
}

// Stats returns the totals over every Conn this Counter opened. Only the
// Sent* and Received* fields are filled.
func (c *Counter) Stats() Stats { return c.total.load() }

// CountingConn is a Conn that counts its traffic; see Counter.
type CountingConn struct {
	inner Conn
	own   counts
	total *counts
}

// Stats returns this Conn's counters (Sent* and Received* fields only).
func (c *CountingConn) Stats() Stats { return c.own.load() }

// LocalAddr implements Conn.
func (c *CountingConn) LocalAddr() netip.AddrPort { return c.inner.LocalAddr() }

// Send implements Conn.
func (c *CountingConn) Send(to netip.AddrPort, b []byte) error {
	if err := c.inner.Send(to, b); err != nil {
		return err
	}
	c.own.add(&c.own.sentMessages, &c.own.sentBytes, len(b))
	c.total.add(&c.total.sentMessages, &c.total.sentBytes, len(b))
	return nil
}

// Recv implements Conn.
func (c *CountingConn) Recv(buf []byte) (int, netip.AddrPort, error) {
	n, from, err := c.inner.Recv(buf)
	if err == nil {
		c.own.add(&c.own.receivedMessages, &c.own.receivedBytes, n)
		c.total.add(&c.total.receivedMessages, &c.total.receivedBytes, n)
	}
	return n, from, err
}

// Close implements Conn.
func (c *CountingConn) Close() error { return c.inner.Close() }

func (c *CountingConn) precheck(to netip.AddrPort, size int) error {
	return precheck(c.inner, to, size)
}

type counts struct {
	sentMessages, sentBytes, receivedMessages, receivedBytes atomic.Uint64
}

func (*counts) add(messages, bytes *atomic.Uint64, n int) {
	messages.Add(1)
	bytes.Add(uint64(n))
}

func (c *counts) load() Stats {
	return Stats{
		SentMessages:     c.sentMessages.Load(),
		SentBytes:        c.sentBytes.Load(),
		ReceivedMessages: c.receivedMessages.Load(),
		ReceivedBytes:    c.receivedBytes.Load(),
	}
}
