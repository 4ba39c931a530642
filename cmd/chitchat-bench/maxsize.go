package main

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/gossipkit/chitchat-go/transport"
)

// maxSize wraps a Transport and records the largest datagram any of its
// Conns was asked to send (sent or not).
type maxSize struct {
	transport.Transport
	max atomic.Int64
}

func (t *maxSize) Open(addr netip.AddrPort) (transport.Conn, error) {
	c, err := t.Transport.Open(addr)
	if err != nil {
		return nil, err
	}
	return maxSizeConn{c, t}, nil
}

// Max returns the largest datagram size seen, in bytes.
func (t *maxSize) Max() int { return int(t.max.Load()) }

type maxSizeConn struct {
	transport.Conn
	t *maxSize
}

func (c maxSizeConn) Send(to netip.AddrPort, b []byte) error {
	for n := int64(len(b)); ; {
		cur := c.t.max.Load()
		if n <= cur || c.t.max.CompareAndSwap(cur, n) {
			break
		}
	}
	return c.Conn.Send(to, b)
}

// Listen and Dial pass streams through: embedding the Transport interface
// does not promote the inner UDP transport's stream methods, and without
// them every node ran with stream exchanges off.
func (t *maxSize) Listen(addr netip.AddrPort) (net.Listener, error) {
	if s, ok := t.Transport.(transport.Streams); ok {
		return s.Listen(addr)
	}
	return nil, transport.ErrNoStreams
}

func (t *maxSize) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	if s, ok := t.Transport.(transport.Streams); ok {
		return s.Dial(ctx, from, to)
	}
	return nil, transport.ErrNoStreams
}
