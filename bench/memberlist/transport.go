package main

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// counters are what one node hands to the kernel. They are read while the
// node runs, hence atomic.
type counters struct {
	udpBytes, udpPackets, udpDropped atomic.Uint64 // datagrams sent and dropped by -loss
	tcpBytes, tcpWrites, tcpDials    atomic.Uint64 // payload written on any connection, connections dialled
}

// totals is a snapshot of the counters of every node.
type totals struct {
	udpBytes, udpPackets, udpDropped uint64
	tcpBytes, tcpWrites, tcpDials    uint64
}

func (c *counters) addTo(t *totals) {
	t.udpBytes += c.udpBytes.Load()
	t.udpPackets += c.udpPackets.Load()
	t.udpDropped += c.udpDropped.Load()
	t.tcpBytes += c.tcpBytes.Load()
	t.tcpWrites += c.tcpWrites.Load()
	t.tcpDials += c.tcpDials.Load()
}

// sub returns t - u, field by field.
func (t totals) sub(u totals) totals {
	return totals{
		udpBytes: t.udpBytes - u.udpBytes, udpPackets: t.udpPackets - u.udpPackets, udpDropped: t.udpDropped - u.udpDropped,
		tcpBytes: t.tcpBytes - u.tcpBytes, tcpWrites: t.tcpWrites - u.tcpWrites, tcpDials: t.tcpDials - u.tcpDials,
	}
}

// dropper decides which outgoing datagrams -loss drops. memberlist sends
// from several goroutines, so draws are serialized.
type dropper struct {
	p   float64
	mu  sync.Mutex
	rng *rand.Rand
}

func newDropper(p float64, seed uint64) *dropper {
	return &dropper{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x6d656d6265726c69))}
}

func (d *dropper) drop() bool {
	if d.p == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64() < d.p
}

// meteredTransport is memberlist's own NetTransport with every send path
// counted and outgoing datagrams dropped with probability -loss. It
// overrides each sending method of memberlist.NodeAwareTransport, so nothing
// bypasses the counters, and wraps accepted connections too, so that replies
// written on them (push/pull, TCP fallback pings) are counted by the node
// that writes them. Receiving is the embedded transport's.
type meteredTransport struct {
	*memberlist.NetTransport
	c        *counters
	loss     *dropper
	accepted chan net.Conn // the inner StreamCh's connections, wrapped
	done     chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*meteredTransport)(nil)

func newMeteredTransport(inner *memberlist.NetTransport, c *counters, loss *dropper) *meteredTransport {
	t := &meteredTransport{NetTransport: inner, c: c, loss: loss,
		accepted: make(chan net.Conn), done: make(chan struct{})}
	t.wg.Go(t.forwardAccepted)
	return t
}

// WriteToAddress sends one datagram, unless -loss drops it. A dropped
// datagram is reported as sent: UDP gives no feedback either.
func (t *meteredTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.loss.drop() {
		t.c.udpDropped.Add(1)
		return time.Now(), nil
	}
	at, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		t.c.udpPackets.Add(1)
		t.c.udpBytes.Add(uint64(len(b)))
	}
	return at, err
}

func (t *meteredTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *meteredTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	t.c.tcpDials.Add(1)
	return &meteredConn{Conn: conn, c: t.c}, nil
}

func (t *meteredTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// StreamCh hands memberlist the accepted connections, wrapped.
func (t *meteredTransport) StreamCh() <-chan net.Conn { return t.accepted }

func (t *meteredTransport) forwardAccepted() {
	for {
		select {
		case conn := <-t.NetTransport.StreamCh():
			select {
			case t.accepted <- &meteredConn{Conn: conn, c: t.c}:
			case <-t.done:
				conn.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

// Shutdown closes the listeners first (memberlist still drains StreamCh
// meanwhile, so the inner accept loop cannot block on it), then stops the
// forwarding goroutine and waits for it.
func (t *meteredTransport) Shutdown() error {
	err := t.NetTransport.Shutdown()
	close(t.done)
	t.wg.Wait()
	return err
}

// meteredConn counts what is written on a TCP connection.
type meteredConn struct {
	net.Conn
	c *counters
}

func (c *meteredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.tcpWrites.Add(1)
	c.c.tcpBytes.Add(uint64(n))
	return n, err
}
