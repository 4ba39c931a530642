// Package pipenet is a net.Listener of in-memory connections (net.Pipe),
// for tests that run a server inside a testing/synctest bubble, where real
// sockets would block outside it.
package pipenet

import (
	"net"
	"sync"
)

// backlog is how many dialed connections wait for Accept before Dial
// blocks.
const backlog = 16

// A Listener accepts the server's ends of the connections Dial makes, and
// the errors FailAccept queues.
type Listener struct {
	addr   net.Addr
	conns  chan net.Conn
	errs   chan error
	closed chan struct{}
	once   sync.Once
}

// Listen returns a listener whose Addr is addr.
func Listen(addr net.Addr) *Listener {
	return &Listener{addr: addr, conns: make(chan net.Conn, backlog), errs: make(chan error, 1), closed: make(chan struct{})}
}

// Accept returns the next connection Dial made, or the error FailAccept
// queued, or net.ErrClosed once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed; the connections already
// accepted stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *Listener) Addr() net.Addr { return l.addr }

// Dial queues a new connection for Accept and returns the client's end.
func (l *Listener) Dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// FailAccept makes the next Accept return err (out of file descriptors,
// say), once.
func (l *Listener) FailAccept(err error) { l.errs <- err }

// Pending is how many dialed connections wait for Accept.
func (l *Listener) Pending() int { return len(l.conns) }
