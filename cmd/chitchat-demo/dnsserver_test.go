package main

// The DNS server's serving: over in-memory connections in virtual time
// (testing/synctest) for its limits and timeouts, and over real sockets
// for startDNS.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/internal/pipenet"
)

// memPacketConn is a net.PacketConn whose datagrams come from in and go
// to out. Of read deadlines it knows only the past ones, which stop reads.
type memPacketConn struct {
	in, out        chan memDatagram
	expired        chan struct{}
	closed         chan struct{}
	expire, closer sync.Once
}

type memDatagram struct {
	b    []byte
	addr net.Addr
}

func newMemPacketConn() *memPacketConn {
	return &memPacketConn{in: make(chan memDatagram, 16), out: make(chan memDatagram, 16),
		expired: make(chan struct{}), closed: make(chan struct{})}
}

var memClient = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353}

func (c *memPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.addr, nil
	case <-c.expired:
		return 0, nil, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *memPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case c.out <- memDatagram{bytes.Clone(b), addr}:
		return len(b), nil
	}
}

func (c *memPacketConn) SetReadDeadline(t time.Time) error {
	if !t.After(time.Now()) {
		c.expire.Do(func() { close(c.expired) })
	}
	return nil
}

func (c *memPacketConn) Close() error {
	c.closer.Do(func() { close(c.closed) })
	return nil
}

func (c *memPacketConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *memPacketConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 53), Port: 53}
}
func (c *memPacketConn) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *memPacketConn) SetWriteDeadline(t time.Time) error { return nil }

// send sends a query for name (SOA) with id over UDP.
func (c *memPacketConn) send(t *testing.T, id uint16, name string) {
	t.Helper()
	m := query(name, dns.TypeSOA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c.in <- memDatagram{b, memClient}
}

// answered returns the IDs of the answers sent so far.
func (c *memPacketConn) answered(t *testing.T) []uint16 {
	t.Helper()
	var ids []uint16
	for {
		select {
		case d := <-c.out:
			r := new(dns.Msg)
			if err := r.Unpack(d.b); err != nil || d.addr != memClient {
				t.Fatalf("answer %x to %v: %v", d.b, d.addr, err)
			}
			ids = append(ids, r.Id)
		default:
			return ids
		}
	}
}

func sorted(ids []uint16) []uint16 { return slices.Sorted(slices.Values(ids)) }

// tcpSend writes a query (SOA) for name with id on c, with its length.
func tcpSend(t *testing.T, c net.Conn, id uint16, name string) {
	t.Helper()
	m := query(name, dns.TypeSOA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// tcpReceive reads an answer from c and returns its ID.
func tcpReceive(t *testing.T, c net.Conn) uint16 {
	t.Helper()
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatalf("reading an answer's length: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return r.Id
}

// tcpExchange sends a query on c and returns the ID of its answer.
func tcpExchange(t *testing.T, c net.Conn, id uint16) uint16 {
	t.Helper()
	tcpSend(t, c, id, "consul.")
	return tcpReceive(t, c)
}

// expectClosed checks that the server closes c after the (virtual) time
// given.
func expectClosed(t *testing.T, c net.Conn, after time.Duration) {
	t.Helper()
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF || time.Since(start) != after {
		t.Fatalf("read %d bytes, %v after %v; want EOF after %v: the server closes the connection", n, err, time.Since(start), after)
	}
}

// gate is a catalog view that blocks until the gate opens.
type gate chan struct{}

func (g gate) view() *catalog.View {
	<-g
	return &catalog.View{Datacenter: "dc1"}
}

// memDNSServer serves on in-memory connections; view blocks until g
// opens (nil: it never blocks). The server is shut down at the end.
func memDNSServer(t *testing.T, g gate, configure func(*dnsServer)) (*dnsServer, *memPacketConn, *pipenet.Listener) {
	if g == nil {
		g = make(gate)
		close(g)
	}
	s := newDNSServer(newDNSResponder(g.view, "consul.", 0, seededRand(1)), slog.New(slog.DiscardHandler))
	if configure != nil {
		configure(s)
	}
	pc, ln := newMemPacketConn(), pipenet.Listen(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 53), Port: 53})
	s.serve(pc, ln)
	t.Cleanup(func() { s.shutdown(context.Background()) })
	return s, pc, ln
}

// Queries over UDP and TCP (several on one connection, each with its
// length); messages shorter than a header get no answer; a query longer
// than maxDNSQueryLen is dropped (UDP) or ends its connection (TCP).
func TestDNSServerServes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, pc, ln := memDNSServer(t, nil, nil)
		padded := func(n int) []byte { // query 2, padded to n bytes
			b := rawQuery(t, "consul.", dns.TypeSOA, -1)
			binary.BigEndian.PutUint16(b, 2)
			return append(b, make([]byte, n-len(b))...)
		}
		pc.send(t, 1, "consul.")
		pc.in <- memDatagram{[]byte("short"), memClient}
		pc.in <- memDatagram{padded(maxDNSQueryLen + 1), memClient}
		pc.in <- memDatagram{padded(maxDNSQueryLen), memClient}
		synctest.Wait()
		if got := pc.answered(t); !slices.Equal(sorted(got), []uint16{1, 2}) {
			t.Errorf("UDP answers %v, want 1 and 2 (padded to maxDNSQueryLen)", got)
		}

		c := ln.Dial()
		for id := range uint16(3) {
			if got := tcpExchange(t, c, id); got != id {
				t.Errorf("TCP: answer %d to query %d", got, id)
			}
		}
		c.Write([]byte("\x00\x05short"))
		if got := tcpExchange(t, c, 7); got != 7 {
			t.Errorf("TCP: after a short message, answer %d to query 7", got)
		}
		c.Write(binary.BigEndian.AppendUint16(nil, maxDNSQueryLen+1))
		expectClosed(t, c, 0)
	})
}

// Beyond maxDNSInFlight queries in progress, a query is dropped: over UDP,
// and over TCP without closing the connection.
func TestDNSServerInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := make(gate)
		_, pc, ln := memDNSServer(t, g, func(s *dnsServer) { s.inFlight = make(chan struct{}, 2) })
		pc.send(t, 1, "consul.")
		pc.send(t, 2, "consul.")
		synctest.Wait() // both in progress
		pc.send(t, 3, "consul.")
		c := ln.Dial()
		tcpSend(t, c, 4, "consul.")
		synctest.Wait() // both read and dropped
		close(g)
		synctest.Wait()
		if got := pc.answered(t); !slices.Equal(sorted(got), []uint16{1, 2}) {
			t.Errorf("UDP answers %v, want 1 and 2 only", got)
		}
		if got := tcpExchange(t, c, 5); got != 5 {
			t.Errorf("TCP: answer %d, want 5 (4 dropped)", got)
		}
		pc.send(t, 6, "consul.")
		synctest.Wait()
		if got := pc.answered(t); !slices.Equal(got, []uint16{6}) {
			t.Errorf("UDP answers %v, want 6", got)
		}
	})
}

// Beyond maxDNSConns open connections, the next waits to be accepted
// until one closes.
func TestDNSServerConnCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ln := memDNSServer(t, nil, func(s *dnsServer) { s.connCap = make(chan struct{}, 2) })
		c1, c2, c3 := ln.Dial(), ln.Dial(), ln.Dial()
		synctest.Wait()
		if ln.Pending() != 1 {
			t.Fatalf("%d connections waiting, want the third", ln.Pending())
		}
		tcpExchange(t, c1, 1)
		tcpExchange(t, c2, 2)
		c1.Close()
		if got := tcpExchange(t, c3, 3); got != 3 || ln.Pending() != 0 {
			t.Errorf("answer %d with %d connections waiting; want 3, none waiting", got, ln.Pending())
		}
	})
}

// A connection is closed when its first query takes dnsIOTimeout to come,
// when the next takes dnsTCPIdleTimeout, when its answer takes
// dnsIOTimeout to be written, and after maxDNSConnQueries queries.
func TestDNSServerConnTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, ln := memDNSServer(t, nil, nil)
		open := func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.conns)
		}

		expectClosed(t, ln.Dial(), dnsIOTimeout) // no first query

		c := ln.Dial()
		tcpExchange(t, c, 1)
		expectClosed(t, c, dnsTCPIdleTimeout) // no next query

		c = ln.Dial()
		tcpSend(t, c, 2, "consul.") // and not read
		time.Sleep(dnsIOTimeout - time.Nanosecond)
		synctest.Wait()
		if open() != 1 {
			t.Fatalf("%d connections open just before the write timeout, want 1", open())
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if open() != 0 {
			t.Errorf("%d connections open at the write timeout, want 0", open())
		}
		expectClosed(t, c, 0)

		c = ln.Dial()
		for id := range uint16(maxDNSConnQueries) {
			tcpExchange(t, c, id)
		}
		expectClosed(t, c, 0)
	})
}

// A failed accept (out of file descriptors) is logged, and accepting
// resumes dnsAcceptPause later.
func TestDNSServerAcceptError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		_, _, ln := memDNSServer(t, nil, func(s *dnsServer) { s.logger = slog.New(slog.NewTextHandler(&logs, nil)) })
		synctest.Wait() // accepting
		start := time.Now()
		ln.FailAccept(errors.New("accept4: too many open files"))
		synctest.Wait()
		if got := tcpExchange(t, ln.Dial(), 1); got != 1 || time.Since(start) != dnsAcceptPause {
			t.Errorf("answer %d after %v, want 1 after %v", got, time.Since(start), dnsAcceptPause)
		}
		if !strings.Contains(logs.String(), "too many open files") {
			t.Errorf("logs %q: want the accept error", logs.String())
		}
	})
}

// shutdown closes idle connections at once and waits for queries in
// progress, which get their answers, until ctx ends.
func TestDNSServerShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := make(gate)
		s, pc, ln := memDNSServer(t, g, nil)
		idle, busy := ln.Dial(), ln.Dial()
		pc.send(t, 1, "consul.")
		tcpSend(t, busy, 2, "consul.")
		synctest.Wait()
		done := make(chan error, 1)
		go func() { done <- s.shutdown(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("shutdown returned %v with queries in progress", err)
		default:
		}
		expectClosed(t, idle, 0)
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) || pc.isClosed() {
			t.Errorf("listener: %v, UDP closed: %v; want the listener closed, not UDP yet", err, pc.isClosed())
		}
		close(g)
		if got := tcpReceive(t, busy); got != 2 {
			t.Errorf("TCP answer %d, want 2", got)
		}
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if got := pc.answered(t); !slices.Equal(got, []uint16{1}) || !pc.isClosed() {
			t.Errorf("UDP answers %v, closed: %v; want 1, closed", got, pc.isClosed())
		}
		expectClosed(t, busy, 0)
	})
	synctest.Test(t, func(t *testing.T) {
		g := make(gate)
		s, pc, _ := memDNSServer(t, g, nil)
		pc.send(t, 1, "consul.")
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := s.shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second || !pc.isClosed() {
			t.Errorf("shutdown: %v after %v, UDP closed: %v; want the deadline after 1s, closed", err, time.Since(start), pc.isClosed())
		}
		close(g) // the query ends, its answer lost
	})
}

// startDNS serves UDP and TCP on the address once it returns, or says
// which of the two it cannot bind.
func TestStartDNS(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDNSResponder(func() *catalog.View { return &catalog.View{Datacenter: "dc1", Index: 7} }, "consul.", 0, newLockedRand())
	logger := slog.New(slog.DiscardHandler)
	port := freePorts(t, 1)
	a := netip.MustParseAddrPort(addr(port))
	s, err := startDNS(a, d, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		r, err := dnsQuery(ctx, a.String(), network, "consul.", dns.TypeSOA, 0)
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 7 {
			t.Errorf("%s: %v, %v; want the SOA", network, r, err)
		}
	}
	if err := s.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}

	for _, network := range []string{"udp", "tcp"} {
		var taken io.Closer
		if network == "udp" {
			taken, err = net.ListenPacket(network, a.String())
		} else {
			taken, err = net.Listen(network, a.String())
		}
		if err != nil {
			t.Fatal(err)
		}
		want := "cannot serve DNS on " + a.String() + "/" + strings.ToUpper(network)
		if s, err := startDNS(a, d, logger); err == nil || !strings.Contains(err.Error(), want) {
			if s != nil {
				s.shutdown(ctx)
			}
			t.Errorf("%s taken: %v, want %q", network, err, want)
		}
		taken.Close()
	}
	s, err = startDNS(a, d, logger) // the failures left nothing bound
	if err != nil {
		t.Fatal(err)
	}
	s.shutdown(ctx)
}

// One client address holds at most sourceCap connections: the next is
// closed at once, while other connections are served, and a connection
// that closes makes room again.
func TestDNSServerConnsPerSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ln := memDNSServer(t, nil, func(s *dnsServer) { s.sourceCap = 2 })
		c1, c2, c3 := ln.Dial(), ln.Dial(), ln.Dial()
		expectClosed(t, c3, 0)
		tcpExchange(t, c1, 1)
		tcpExchange(t, c2, 2)
		c1.Close()
		synctest.Wait()
		c4 := ln.Dial()
		defer c4.Close()
		if got := tcpExchange(t, c4, 4); got != 4 {
			t.Errorf("answer %d on a connection after one closed, want 4", got)
		}
	})
}

// sourceAddr keys connections by client IP, IPv4-mapped as IPv4.
func TestDNSSourceAddr(t *testing.T) {
	for _, tt := range []struct {
		remote net.Addr
		want   netip.Addr
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}, netip.MustParseAddr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 2}, netip.MustParseAddr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 3}, netip.MustParseAddr("2001:db8::1")},
		{&net.UnixAddr{Name: "pipe"}, netip.Addr{}},
	} {
		if got := sourceAddr(remoteConn{tt.remote}); got != tt.want {
			t.Errorf("sourceAddr(%v) = %v, want %v", tt.remote, got, tt.want)
		}
	}
}

// remoteConn is a net.Conn of which only RemoteAddr works.
type remoteConn struct{ remote net.Addr }

func (c remoteConn) RemoteAddr() net.Addr           { return c.remote }
func (remoteConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (remoteConn) Write(b []byte) (int, error)      { return len(b), nil }
func (remoteConn) Close() error                     { return nil }
func (remoteConn) LocalAddr() net.Addr              { return nil }
func (remoteConn) SetDeadline(time.Time) error      { return nil }
func (remoteConn) SetReadDeadline(time.Time) error  { return nil }
func (remoteConn) SetWriteDeadline(time.Time) error { return nil }
