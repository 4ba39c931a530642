//go:build !linux

package transport

import (
	"net"
	"net/netip"
)

// rawIO is Linux only (udp_linux.go): elsewhere the socket's own methods
// do the I/O.
type rawIO struct{}

func newRawIO(*net.UDPConn, netip.AddrPort) *rawIO { return nil }

func (*rawIO) write([]byte, netip.AddrPort) (bool, error) { return false, nil }

func (*rawIO) read([]byte) (int, bool, netip.AddrPort, error) {
	return 0, false, netip.AddrPort{}, net.ErrClosed
}
