package main

// The DNS server: a dnsResponder over UDP and TCP (RFC 7766: 2-byte
// length framing, several queries a connection) on one address, bounded
// as a small server must be: queries answered at once, open connections,
// read, write and idle timeouts.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DNS server limits.
const (
	maxDNSQueryLen = 4096 // longer queries are dropped; over TCP, the connection is closed
	maxDNSInFlight = 1024 // queries answered at once; more are dropped, as by a busy server
	maxDNSConns    = 256  // open TCP connections; more wait to be accepted
	// maxDNSConnsPerSource bounds the open TCP connections of one client
	// address; more are closed at once. Without it, one host holding
	// maxDNSConns idle connections (re-opened every dnsIOTimeout) would
	// keep every other client's TCP fallback waiting.
	maxDNSConnsPerSource = 16
	maxDNSConnQueries    = 128             // queries on one TCP connection, then it is closed
	dnsIOTimeout         = 2 * time.Second // to read a connection's first query, and to write an answer
	dnsTCPIdleTimeout    = 8 * time.Second // to read a connection's next query
	dnsAcceptPause       = time.Second     // after a failed accept (out of file descriptors)
)

// dnsServer serves a dnsResponder on one address, over UDP and TCP.
type dnsServer struct {
	resp     *dnsResponder
	logger   *slog.Logger
	inFlight chan struct{} // a token per query being answered
	connCap  chan struct{} // a token per open TCP connection
	pc       net.PacketConn
	ln       net.Listener
	wg       sync.WaitGroup // every goroutine serving
	done     chan struct{}  // closed by shutdown

	mu        sync.Mutex // shutdown, the connections' read deadlines, perSource
	conns     map[net.Conn]struct{}
	perSource map[netip.Addr]int // open connections by client address
	sourceCap int                // maxDNSConnsPerSource but in tests
}

// startDNS binds addr (UDP and TCP) and serves resp there. Queries are
// answered once it returns.
func startDNS(addr netip.AddrPort, resp *dnsResponder, logger *slog.Logger) (*dnsServer, error) {
	pc, err := listenDNSUDP(addr)
	if err != nil {
		return nil, fmt.Errorf("cannot serve DNS on %v/UDP: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("cannot serve DNS on %v/TCP: %w", addr, err)
	}
	s := newDNSServer(resp, logger)
	s.serve(pc, ln)
	return s, nil
}

func newDNSServer(resp *dnsResponder, logger *slog.Logger) *dnsServer {
	return &dnsServer{resp: resp, logger: logger, inFlight: make(chan struct{}, maxDNSInFlight),
		connCap: make(chan struct{}, maxDNSConns), done: make(chan struct{}), conns: map[net.Conn]struct{}{},
		perSource: map[netip.Addr]int{}, sourceCap: maxDNSConnsPerSource}
}

// serve serves on pc and ln until shutdown.
func (s *dnsServer) serve(pc net.PacketConn, ln net.Listener) {
	s.pc, s.ln = pc, ln
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
}

// serveUDP answers each query in a goroutine of its own.
func (s *dnsServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, maxDNSQueryLen+1) // a longer query fills it
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if !s.stopping() {
				s.logger.Warn("DNS server stopped serving UDP", "addr", s.pc.LocalAddr(), "err", err)
			}
			return
		}
		if n > maxDNSQueryLen || !s.acquire() {
			continue
		}
		query := bytes.Clone(buf[:n])
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release()
			if r := s.resp.answer(query, false); r != nil {
				s.pc.WriteTo(r, from) // a lost answer is a lost datagram: the client asks again
			}
		}()
	}
}

// serveTCP accepts connections while fewer than maxDNSConns are open.
func (s *dnsServer) serveTCP() {
	defer s.wg.Done()
	for {
		select {
		case s.connCap <- struct{}{}:
		case <-s.done:
			return
		}
		c, err := s.ln.Accept()
		if err != nil {
			<-s.connCap
			if s.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.logger.Warn("DNS server cannot accept a connection", "addr", s.ln.Addr(), "err", err)
			select {
			case <-time.After(dnsAcceptPause):
			case <-s.done:
				return
			}
			continue
		}
		if !s.track(c) {
			c.Close()
			<-s.connCap
			if s.stopping() {
				return
			}
			continue // its client has sourceCap connections open already
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one connection, in turn.
func (s *dnsServer) serveConn(c net.Conn) {
	defer func() {
		s.untrack(c)
		c.Close()
		<-s.connCap
		s.wg.Done()
	}()
	timeout := dnsIOTimeout
	for range maxDNSConnQueries {
		query, err := s.readQuery(c, timeout)
		if err != nil {
			return
		}
		timeout = dnsTCPIdleTimeout
		if !s.acquire() {
			continue
		}
		r := s.resp.answer(query, true)
		if r != nil {
			c.SetWriteDeadline(time.Now().Add(dnsIOTimeout))
			bufs := net.Buffers{binary.BigEndian.AppendUint16(nil, uint16(len(r))), r}
			_, err = bufs.WriteTo(c)
		}
		s.release()
		if err != nil {
			return
		}
	}
}

var errDNSQueryTooLong = errors.New("DNS query too long")

// readQuery reads the next query of c within timeout.
func (s *dnsServer) readQuery(c net.Conn, timeout time.Duration) ([]byte, error) {
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	s.mu.Unlock()
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint16(n[:]) > maxDNSQueryLen {
		return nil, errDNSQueryTooLong
	}
	query := make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err := io.ReadFull(c, query)
	return query, err
}

func (s *dnsServer) acquire() bool {
	select {
	case s.inFlight <- struct{}{}:
		return true
	default:
		return false // overloaded: the query is dropped, and the client asks again
	}
}

func (s *dnsServer) release() { <-s.inFlight }

func (s *dnsServer) stopping() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// track records c as open, unless the server is stopping or c's client
// address already has sourceCap connections open.
func (s *dnsServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := sourceAddr(c)
	if s.stopping() || s.perSource[src] >= s.sourceCap {
		return false
	}
	s.conns[c] = struct{}{}
	s.perSource[src]++
	return true
}

func (s *dnsServer) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	src := sourceAddr(c)
	if s.perSource[src]--; s.perSource[src] <= 0 {
		delete(s.perSource, src)
	}
}

// sourceAddr is c's client address, IPv4-mapped addresses as IPv4; the
// zero Addr for a connection that is not TCP (the tests' pipes).
func sourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// shutdown stops serving, waiting for queries in progress until ctx
// ends; connections waiting for a query are closed at once.
func (s *dnsServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping() {
		s.mu.Unlock()
		return nil
	}
	close(s.done)
	longAgo := time.Unix(1, 0)
	s.pc.SetReadDeadline(longAgo) // not closed yet: queries in progress write their answers
	s.ln.Close()
	for c := range s.conns {
		c.SetReadDeadline(longAgo)
	}
	s.mu.Unlock()

	stopped := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(stopped)
	}()
	var err error
	select {
	case <-stopped:
	case <-ctx.Done():
		err = fmt.Errorf("DNS queries still in progress: %w", ctx.Err())
	}
	s.pc.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	return err
}
