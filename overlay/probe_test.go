package overlay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// packetNet is an in-memory network of PacketConns, one per address, that
// delivers at once (for synctest).
type packetNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*memPacketConn
}

type memPacketConn struct {
	net   *packetNet
	local netip.AddrPort
	in    chan memDatagram
	done  chan struct{}
	once  sync.Once
}

type memDatagram struct {
	b    []byte
	from netip.AddrPort
}

func (n *packetNet) listen(ap netip.AddrPort) *memPacketConn {
	c := &memPacketConn{net: n, local: ap, in: make(chan memDatagram, 16), done: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = make(map[netip.AddrPort]*memPacketConn)
	}
	n.conns[ap] = c
	return c
}

func (c *memPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), net.UDPAddrFromAddrPort(d.from), nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *memPacketConn) WriteTo(b []byte, to net.Addr) (int, error) {
	c.net.mu.Lock()
	dst := c.net.conns[to.(*net.UDPAddr).AddrPort()]
	c.net.mu.Unlock()
	if dst == nil {
		return len(b), nil // lost
	}
	select {
	case dst.in <- memDatagram{append([]byte(nil), b...), c.local}:
	case <-dst.done:
	}
	return len(b), nil
}

func (c *memPacketConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.net.mu.Lock()
		delete(c.net.conns, c.local)
		c.net.mu.Unlock()
	})
	return nil
}

func (c *memPacketConn) LocalAddr() net.Addr              { return net.UDPAddrFromAddrPort(c.local) }
func (c *memPacketConn) SetDeadline(time.Time) error      { return nil }
func (c *memPacketConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memPacketConn) SetWriteDeadline(time.Time) error { return nil }

// TestProberRounds: a peer that answers is "answered" after each round; one
// that stops answering is not, from the round after its last answer on;
// a reply from another address than the probed one does not count.
func TestProberRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var pn packetNet
		a, b := netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")
		log := slog.New(slog.DiscardHandler)
		pa := newProber(pn.listen(netip.AddrPortFrom(a, DefaultProbePort)), DefaultProbePort, log)
		pb := newProber(pn.listen(netip.AddrPortFrom(b, DefaultProbePort)), DefaultProbePort, log)
		var wg sync.WaitGroup
		wg.Go(pa.serve)
		wg.Go(pb.serve)
		defer func() { pa.close(); pb.close(); wg.Wait() }()

		const interval = 5 * time.Second
		if ok, _, _ := pa.health(b); ok {
			t.Fatal("answered before any probe")
		}
		pa.round([]netip.Addr{b}, interval)
		synctest.Wait()
		if ok, last, rtt := pa.health(b); !ok || !last.Equal(time.Now()) || rtt != 0 {
			t.Errorf("after a round: answered %v at %v (rtt %v), want answered now", ok, last, rtt)
		}
		time.Sleep(interval)
		pa.round([]netip.Addr{b}, interval)
		synctest.Wait()
		if ok, _, _ := pa.health(b); !ok {
			t.Error("second round unanswered")
		}

		// b stops answering: the next round still counts its last answer
		// (it came after the previous round), the one after does not.
		pb.close()
		time.Sleep(interval)
		pa.round([]netip.Addr{b}, interval)
		synctest.Wait()
		if ok, _, _ := pa.health(b); !ok {
			t.Error("a peer that answered the previous round is already unanswered")
		}
		time.Sleep(interval)
		pa.round([]netip.Addr{b}, interval)
		synctest.Wait()
		if ok, _, _ := pa.health(b); ok {
			t.Error("a peer silent for a whole round is still answered")
		}

		// A one-off probe waits for the context.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := pa.probe(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("probe of a silent peer: %v", err)
		}

		// A forged reply (right nonce, wrong source) is ignored.
		nonce, _ := pa.send(netip.MustParseAddr("100.64.0.3"), nil, true)
		pa.matchReply(nonce, b)
		if ok, _, _ := pa.health(netip.MustParseAddr("100.64.0.3")); ok {
			t.Error("a reply from another address counted")
		}
	})
}
