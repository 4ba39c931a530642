package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
)

// defaultSocketBuffer is the SO_RCVBUF/SO_SNDBUF size requested by default:
// a gossip burst of 64 KiB datagrams must not overflow a small kernel
// buffer.
const defaultSocketBuffer = 4 << 20

// UDP is the real-network Transport. The zero value is ready to use.
type UDP struct {
	// SocketBuffer is the kernel receive and send buffer size requested
	// for each socket, in bytes. 0 means 4 MiB; negative leaves the OS
	// default. Failures to set it are ignored (the OS may cap it).
	SocketBuffer int
}

var _ Transport = UDP{}

// Open binds a UDP socket on addr.
func (u UDP) Open(addr netip.AddrPort) (Conn, error) {
	addr = unmap(addr)
	if !addr.IsValid() {
		return nil, fmt.Errorf("failed to bind to %v/UDP for gossip: invalid address", addr)
	}
	pc, err := net.ListenUDP(udpNetwork(addr.Addr()), net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("failed to bind to %v/UDP for gossip: %w", addr, err)
	}
	if size := u.SocketBuffer; size >= 0 {
		if size == 0 {
			size = defaultSocketBuffer
		}
		_ = pc.SetReadBuffer(size)
		_ = pc.SetWriteBuffer(size)
	}
	local := addr
	if la, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		local = unmap(la.AddrPort())
	}
	return &udpConn{pc: pc, local: local, raw: newRawIO(pc, local)}, nil
}

// udpNetwork is the network to bind ip on: "udp4" for an IPv4 address, so
// that 0.0.0.0 binds IPv4 only (Go's "udp" makes it a dual-stack socket that
// also answers on IPv6, past IPv4-only firewall rules); "udp" otherwise, so
// that "::" stays dual-stack.
func udpNetwork(ip netip.Addr) string {
	if ip.Is4() {
		return "udp4"
	}
	return "udp"
}

type udpConn struct {
	pc     *net.UDPConn
	local  netip.AddrPort
	closed atomic.Bool
	raw    *rawIO // Linux: datagram I/O by raw syscalls (udp_linux.go); nil elsewhere
}

func (c *udpConn) LocalAddr() netip.AddrPort { return c.local }

func (c *udpConn) Send(to netip.AddrPort, b []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.precheck(to, len(b)); err != nil {
		return err
	}
	if err := c.write(b, unmap(to)); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return err // *net.OpError; IsTransient classifies its errno
	}
	return nil
}

// precheck refuses a datagram larger than MaxPayloadSize, and one across
// address families (the kernel refuses it too, as "non-IPv4 address" or
// ENETUNREACH): only a socket bound to "::" is dual-stack.
func (c *udpConn) precheck(to netip.AddrPort, size int) error {
	if err := checkSize(to, size); err != nil {
		return err
	}
	to = unmap(to)
	local := c.local.Addr()
	if local.Is4() != to.Addr().Is4() && !(local.Is6() && local.IsUnspecified()) {
		return familyError(c.local, to)
	}
	return nil
}

func (c *udpConn) Recv(buf []byte) (int, netip.AddrPort, error) {
	n, truncated, from, err := c.read(buf)
	from = unmap(from)
	if err != nil {
		if c.closed.Load() || errors.Is(err, net.ErrClosed) {
			return 0, netip.AddrPort{}, ErrClosed
		}
		return 0, from, err // *net.OpError; IsTransient classifies its errno
	}
	if truncated || n > MaxPayloadSize {
		return 0, from, &transientError{fmt.Errorf(
			"transport: dropped datagram from %v larger than the %d-byte buffer or %d: %w",
			from, len(buf), MaxPayloadSize, ErrTooLarge)}
	}
	return n, from, nil
}

func (c *udpConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.pc.Close()
}

// write sends b to `to` through the socket.
func (c *udpConn) write(b []byte, to netip.AddrPort) error {
	if c.raw != nil {
		if ok, err := c.raw.write(b, to); ok {
			return err
		}
	}
	_, err := c.pc.WriteToUDPAddrPort(b, to)
	return err
}

// read receives one datagram into buf: its size, whether it was larger
// than buf, its source.
func (c *udpConn) read(buf []byte) (int, bool, netip.AddrPort, error) {
	if c.raw != nil {
		return c.raw.read(buf)
	}
	n, _, flags, from, err := c.pc.ReadMsgUDPAddrPort(buf, nil)
	return n, flags&msgTrunc != 0, from, err
}
