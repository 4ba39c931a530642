package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// MaxPayloadSize is the largest UDP payload over IPv4 (65 535 − 20 − 8
// bytes), chitchat's MAX_UDP_DATAGRAM_PAYLOAD_SIZE. It is the budget of
// every gossip message and the receive buffer size callers should use.
const MaxPayloadSize = 65507

// ErrClosed is returned by Send and Recv once the Conn is closed.
// errors.Is(ErrClosed, net.ErrClosed) is true as well, so callers may test
// for either.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string        { return "transport: connection closed" }
func (closedError) Is(target error) bool { return target == net.ErrClosed }

// ErrTooLarge reports a datagram larger than a limit: on Send, larger than
// [MaxPayloadSize] or the in-memory network's MTU (a caller bug, not
// transient); on Recv, larger than the caller's buffer or MaxPayloadSize
// (the datagram is dropped and the error is transient).
var ErrTooLarge = errors.New("transport: datagram too large")

// Transport opens datagram endpoints.
type Transport interface {
	// Open binds a datagram endpoint on addr (IPv4-mapped IPv6 addresses
	// are unmapped first). Opening an address that is already open fails
	// with an error matching syscall.EADDRINUSE. Port 0 picks a free port,
	// which LocalAddr reports.
	Open(addr netip.AddrPort) (Conn, error)
}

// Conn is one open datagram endpoint. All methods are safe for concurrent
// use.
type Conn interface {
	// LocalAddr returns the bound address (with the chosen port when the
	// Conn was opened with port 0).
	LocalAddr() netip.AddrPort

	// Send transmits one datagram to `to`. Sending to an address nobody
	// listens on is not an error. Send never retains b after returning.
	// It returns ErrClosed after Close, an error matching ErrTooLarge
	// (not transient) when b exceeds the transport's limit, and an error
	// matching syscall.EAFNOSUPPORT (not transient) when `to` is of
	// another address family than the Conn (IPv6 from an IPv4 address, or
	// IPv4 from an IPv6 address other than the dual-stack wildcard "::").
	Send(to netip.AddrPort, b []byte) error

	// Recv blocks until a datagram arrives and copies it into buf, which
	// should be at least MaxPayloadSize bytes long. It returns ErrClosed
	// after Close (Close unblocks a pending Recv). For a transient error
	// (IsTransient), n is 0, from may identify the sender, and the caller
	// should simply call Recv again; any other error means the Conn is
	// unusable.
	Recv(buf []byte) (n int, from netip.AddrPort, err error)

	// Close releases the address so that it can be opened again. It is
	// idempotent.
	Close() error
}

// IsTransient reports whether err concerns a single datagram rather than a
// broken Conn: a dropped truncated or oversized datagram, or one of the
// socket errors chitchat never treats as fatal (upstream #145, #184):
// ECONNREFUSED, ECONNRESET, ENOBUFS, ENOMEM, EAGAIN, EHOSTUNREACH,
// ENETUNREACH (plus WSAECONNRESET and WSAEMSGSIZE on Windows). ErrClosed
// and nil are not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	for _, e := range transientErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var transientErrnos = append([]syscall.Errno{
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ENOBUFS,
	syscall.ENOMEM,
	syscall.EAGAIN,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
}, platformTransientErrnos...)

// transientError marks an error as transient for IsTransient.
type transientError struct{ err error }

func (e *transientError) Error() string   { return e.err.Error() }
func (e *transientError) Unwrap() error   { return e.err }
func (e *transientError) Transient() bool { return true }

// prechecker is implemented by the Conns of this package: precheck returns
// the error Send would return for a datagram of size bytes to `to` for
// reasons of size or address family, without sending. The wrappers
// ([Lossy]) run it first, so that a datagram UDP refuses fails even when
// it would have been dropped.
type prechecker interface {
	precheck(to netip.AddrPort, size int) error
}

// precheck runs c's precheck, or, for a Conn from outside this package,
// the UDP size limit.
func precheck(c Conn, to netip.AddrPort, size int) error {
	if p, ok := c.(prechecker); ok {
		return p.precheck(to, size)
	}
	return checkSize(to, size)
}

// checkSize refuses a datagram larger than MaxPayloadSize.
func checkSize(to netip.AddrPort, size int) error {
	if size > MaxPayloadSize {
		return fmt.Errorf("transport: send %d bytes to %v (max %d): %w", size, to, MaxPayloadSize, ErrTooLarge)
	}
	return nil
}

// familyError reports a send across address families, which UDP refuses.
func familyError(from, to netip.AddrPort) error {
	return fmt.Errorf("transport: cannot send from %v to %v: the address families differ: %w", from, to, syscall.EAFNOSUPPORT)
}

// unmap normalizes IPv4-mapped IPv6 addresses to plain IPv4 so that
// addresses compare equal however the OS reported them.
func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}
