package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Streams is implemented by transports that carry streams beside
// datagrams: chitchat moves bulk state over them (a joining node, or one
// back from a long partition, gets the cluster in one exchange). UDP's
// streams are TCP on the same port; the in-memory network's are pipes.
type Streams interface {
	// Listen accepts streams on addr, the address a datagram endpoint of
	// the same transport is open on.
	Listen(addr netip.AddrPort) (net.Listener, error)
	// Dial opens a stream from the endpoint open on from (TCP ignores it
	// and picks an ephemeral port) to the one listening on to.
	Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error)
}

// ErrNoStreams is returned by the stream methods of a wrapper whose inner
// transport carries no streams.
var ErrNoStreams = errors.New("transport: this transport carries no streams")

// Listen accepts TCP streams on addr; an IPv4 address (the wildcard
// included) listens on IPv4 only, like the datagram endpoint.
func (UDP) Listen(addr netip.AddrPort) (net.Listener, error) {
	network := "tcp6"
	if addr.Addr().Unmap().Is4() {
		network = "tcp4"
	} else if addr.Addr().IsUnspecified() {
		network = "tcp"
	}
	return net.Listen(network, unmap(addr).String())
}

// Dial opens a TCP stream to to.
func (UDP) Dial(ctx context.Context, _, to netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", unmap(to).String())
}

// streamsOf returns t's streams, if it has them.
func streamsOf(t Transport) (Streams, bool) {
	s, ok := t.(Streams)
	return s, ok
}

// Listen accepts streams on addr, if the inner transport has them. Streams
// are never dropped: they model TCP, which retransmits.
func (l *lossy) Listen(addr netip.AddrPort) (net.Listener, error) {
	if s, ok := streamsOf(l.inner); ok {
		return s.Listen(addr)
	}
	return nil, ErrNoStreams
}

// Dial opens a stream, if the inner transport has them.
func (l *lossy) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	if s, ok := streamsOf(l.inner); ok {
		return s.Dial(ctx, from, to)
	}
	return nil, ErrNoStreams
}

// Listen accepts streams on addr, if the inner transport has them. Stream
// bytes are not counted: Stats count datagrams.
func (c *Counter) Listen(addr netip.AddrPort) (net.Listener, error) {
	if s, ok := streamsOf(c.inner); ok {
		return s.Listen(addr)
	}
	return nil, ErrNoStreams
}

// Dial opens a stream, if the inner transport has them.
func (c *Counter) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	if s, ok := streamsOf(c.inner); ok {
		return s.Dial(ctx, from, to)
	}
	return nil, ErrNoStreams
}

// Listen accepts streams on addr: in-memory pipes, subject to the same
// cuts and isolation as datagrams (at Dial).
func (n *Network) Listen(addr netip.AddrPort) (net.Listener, error) {
	addr = unmap(addr)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners == nil {
		n.listeners = make(map[netip.AddrPort]*memListener)
	}
	if _, used := n.listeners[addr]; used {
		return nil, fmt.Errorf("transport: stream address not available %v: %w", addr, syscall.EADDRINUSE)
	}
	l := &memListener{net: n, addr: addr, conns: make(chan net.Conn, streamBacklog), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// Dial opens a pipe from from to the listener on to. It fails at once if
// nobody listens there or the link is cut.
func (n *Network) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	from, to = unmap(from), unmap(to)
	n.mu.Lock()
	l := n.listeners[to]
	blocked := n.blockedLocked(from, to)
	n.mu.Unlock()
	if l == nil || blocked {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: tcpAddr(to), Err: syscall.ECONNREFUSED}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	select {
	case l.conns <- &memStream{Conn: server, local: tcpAddr(to), remote: tcpAddr(from)}:
		return &memStream{Conn: client, local: tcpAddr(from), remote: tcpAddr(to)}, nil
	default: // the backlog is full, or the listener closed
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: tcpAddr(to), Err: syscall.ECONNREFUSED}
	}
}

// streamBacklog is how many dialled streams wait for Accept, as a TCP
// listen backlog does; past it, Dial is refused.
const streamBacklog = 64

func tcpAddr(a netip.AddrPort) net.Addr { return net.TCPAddrFromAddrPort(a) }

// memListener accepts in-memory streams.
type memListener struct {
	net   *Network
	addr  netip.AddrPort
	conns chan net.Conn
	done  chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	if l.net.listeners[l.addr] == l {
		delete(l.net.listeners, l.addr)
		close(l.done)
		for { // refuse the streams still waiting, as a closed socket does
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return nil
			}
		}
	}
	return nil
}

func (l *memListener) Addr() net.Addr { return tcpAddr(l.addr) }

// memStream is one end of an in-memory stream, with the addresses of its
// ends.
type memStream struct {
	net.Conn
	local, remote net.Addr
}

func (s *memStream) LocalAddr() net.Addr  { return s.local }
func (s *memStream) RemoteAddr() net.Addr { return s.remote }

// SplitListener shares one TCP port between chitchat's streams and another
// protocol, as the demo shares its gossip port between UDP gossip, HTTP
// and streams: it reads the first byte of every accepted connection and
// hands the connection, byte included, to streams when it is below 0x20 (a
// stream frame starts with a big-endian length below 512 MiB, so with a
// zero byte; HTTP, TLS and most text protocols start with a printable byte
// or 0x16) and to other otherwise. A connection that sends nothing within
// peekTimeout is closed. Closing either listener closes ln.
func SplitListener(ln net.Listener) (other, streams net.Listener) {
	s := &split{ln: ln, done: make(chan struct{})}
	s.other = &splitSide{s: s, conns: make(chan net.Conn)}
	s.streams = &splitSide{s: s, conns: make(chan net.Conn)}
	go s.accept()
	return s.other, s.streams
}

// peekTimeout bounds the wait for a connection's first byte.
const peekTimeout = 10 * time.Second

type split struct {
	ln             net.Listener
	other, streams *splitSide
	once           sync.Once
	done           chan struct{}
	err            error // why accepting stopped; set before done closes
}

// accept hands every connection of ln to route. An error other than a
// closed listener (out of file descriptors, say) is waited out, 5 ms
// doubling to 1 s, instead of ending both listeners for good.
func (s *split) accept() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err == nil {
			backoff = 0
			go s.route(c)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			s.close(err)
			return
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		select {
		case <-time.After(backoff):
		case <-s.done:
			return
		}
	}
}

func (s *split) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(peekTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	side := s.other
	if first[0] < 0x20 {
		side = s.streams
	}
	select {
	case side.conns <- &peeked{Conn: c, first: first[0]}:
	case <-s.done:
		c.Close()
	}
}

func (s *split) close(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.ln.Close()
	})
}

// splitSide is one of the two listeners of a SplitListener.
type splitSide struct {
	s     *split
	conns chan net.Conn
}

func (l *splitSide) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.s.done:
		if errors.Is(l.s.err, net.ErrClosed) || l.s.err == nil {
			return nil, net.ErrClosed
		}
		return nil, l.s.err
	}
}

func (l *splitSide) Close() error   { l.s.close(net.ErrClosed); return nil }
func (l *splitSide) Addr() net.Addr { return l.s.ln.Addr() }

// peeked is a connection whose first byte was read by the splitter.
type peeked struct {
	net.Conn
	first byte
	read  bool
}

func (p *peeked) Read(b []byte) (int, error) {
	if p.read || len(b) == 0 {
		return p.Conn.Read(b)
	}
	p.read = true
	b[0] = p.first
	return 1, nil
}

// WithStreamListener returns t with ln as its stream listener: Listen
// returns ln (once), Dial and datagrams are t's. Use it with
// SplitListener to share the gossip port's TCP side with another protocol.
func WithStreamListener(t Transport, ln net.Listener) Transport {
	return &withListener{Transport: t, ln: ln}
}

type withListener struct {
	Transport
	mu sync.Mutex
	ln net.Listener // nil once handed out
}

func (w *withListener) Listen(netip.AddrPort) (net.Listener, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln == nil {
		return nil, fmt.Errorf("transport: the stream listener was handed out already: %w", syscall.EADDRINUSE)
	}
	ln := w.ln
	w.ln = nil
	return ln, nil
}

func (w *withListener) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	if s, ok := streamsOf(w.Transport); ok {
		return s.Dial(ctx, from, to)
	}
	return nil, ErrNoStreams
}
