package main

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenDNSUDP binds addr for UDP. On an unspecified address (0.0.0.0,
// ::) each answer leaves from the address its query was sent to, as the
// client expects: a host with several addresses would otherwise answer
// from whichever its routes pick, and the client drop the answer.
func listenDNSUDP(addr netip.AddrPort) (net.PacketConn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	if !addr.Addr().IsUnspecified() {
		return c, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var err4, err6 error
	if err := rc.Control(func(fd uintptr) {
		// Either family may be missing; a dual-stack socket takes both.
		err4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		err6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	}); err != nil || (err4 != nil && err6 != nil) {
		c.Close()
		return nil, errors.Join(err, err4, err6)
	}
	return pktinfoConn{c}, nil
}

// pktinfoConn is a UDP socket on an unspecified address that answers
// each datagram from the address it was sent to.
type pktinfoConn struct{ *net.UDPConn }

// pktinfoAddr is where a datagram came from, and the local address it
// was sent to (invalid if unknown).
type pktinfoAddr struct {
	from netip.AddrPort
	to   netip.Addr
}

func (a pktinfoAddr) Network() string { return "udp" }
func (a pktinfoAddr) String() string  { return a.from.String() }

func (c pktinfoConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var oob [128]byte
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(b, oob[:])
	if err != nil {
		return n, nil, err
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	a := pktinfoAddr{from: from}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			a.to = netip.AddrFrom4([4]byte(m.Data[4:8])) // ipi_spec_dst: the local address
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo && !a.to.IsValid():
			a.to = netip.AddrFrom16([16]byte(m.Data[:16])).Unmap()
		}
	}
	return n, a, nil
}

func (c pktinfoConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(pktinfoAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	var oob []byte
	switch {
	case !a.to.IsValid() || a.to.IsMulticast():
	case a.to.Is4():
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: a.to.As4()})
	default:
		oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: a.to.As16()})
	}
	n, _, err := c.WriteMsgUDPAddrPort(b, oob, a.from)
	return n, err
}
