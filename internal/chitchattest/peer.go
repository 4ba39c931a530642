package chitchattest

import (
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// Peer is a raw socket on the cluster's network: it sends hand-made
// messages and records what it receives, to test a Server from the wire.
type Peer struct {
	c    *Cluster
	conn transport.Conn
	in   chan Received
	done chan struct{}
}

// Received is one datagram a Peer received.
type Received struct {
	From netip.AddrPort
	Msg  chitchat.Message // nil if the datagram did not decode
	Err  error            // the decode error
	At   time.Time        // virtual arrival time
}

// OpenPeer opens a raw socket on addr. It is closed at the end of the test.
func (c *Cluster) OpenPeer(addr netip.AddrPort) *Peer {
	c.t.Helper()
	conn, err := c.net.Open(addr)
	if err != nil {
		c.t.Fatalf("chitchattest: open peer %v: %v", addr, err)
	}
	p := &Peer{c: c, conn: conn, in: make(chan Received, 1024), done: make(chan struct{})}
	go p.recv()
	c.t.Cleanup(p.Close)
	return p
}

func (p *Peer) recv() {
	buf := make([]byte, transport.MaxPayloadSize)
	for {
		n, from, err := p.conn.Recv(buf)
		if err != nil {
			if transport.IsTransient(err) {
				continue
			}
			return // closed
		}
		m, err := chitchat.DecodeMessage(buf[:n])
		select {
		case p.in <- Received{From: from, Msg: m, Err: err, At: time.Now()}:
		case <-p.done:
			return
		}
	}
}

// Addr returns the peer's address.
func (p *Peer) Addr() netip.AddrPort { return p.conn.LocalAddr() }

// Send encodes m and sends it to `to`, failing the test on a send error.
func (p *Peer) Send(to netip.AddrPort, m chitchat.Message) {
	p.c.t.Helper()
	p.SendRaw(to, chitchat.EncodeMessage(m))
}

// SendRaw sends b as is.
func (p *Peer) SendRaw(to netip.AddrPort, b []byte) {
	p.c.t.Helper()
	if err := p.conn.Send(to, b); err != nil {
		p.c.t.Fatalf("chitchattest: peer %v send to %v: %v", p.Addr(), to, err)
	}
}

// Next returns the next datagram received, or false if none arrives within
// timeout (virtual).
func (p *Peer) Next(timeout time.Duration) (Received, bool) {
	return recvWithin(p.in, timeout) // p.in is never closed
}

// NextOfType skips datagrams until one of type typ arrives, or returns false
// once timeout (virtual, for the whole wait) has passed.
func (p *Peer) NextOfType(typ chitchat.MessageType, timeout time.Duration) (Received, bool) {
	deadline := time.Now().Add(timeout)
	for {
		r, ok := p.Next(time.Until(deadline))
		if !ok {
			return Received{}, false
		}
		if r.Msg != nil && r.Msg.Type() == typ {
			return r, true
		}
	}
}

// Close closes the socket and stops the receiving goroutine.
func (p *Peer) Close() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.conn.Close()
}
