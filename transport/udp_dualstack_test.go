package transport

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
)

// A dual-stack socket ("::") exchanges datagrams with an IPv4 peer: it sends
// to the peer's plain IPv4 address and reports it unmapped as the source.
func TestUDPDualStackWithIPv4Peer(t *testing.T) {
	c, err := UDP{}.Open(netip.MustParseAddrPort("[::]:0"))
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := c.Send(peerAddr, []byte("to v4")); err != nil {
		t.Fatalf("Send to %v: %v", peerAddr, err)
	}
	buf := make([]byte, 64)
	n, _, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "to v4" {
		t.Fatalf("peer read %q, %v; want %q", buf[:n], err, "to v4")
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.LocalAddr().Port())
	if _, err := peer.WriteToUDPAddrPort([]byte("from v4"), to); err != nil {
		t.Fatal(err)
	}
	mustRecv(t, c, peerAddr, []byte("from v4"))
}

// On Linux, datagrams go through raw syscalls (udp_linux.go), not through
// the runtime's syscall wrappers.
func TestUDPRawIOOnLinux(t *testing.T) {
	c := open(t, UDP{}, localhost0)
	if got, want := c.(*udpConn).raw != nil, runtime.GOOS == "linux"; got != want {
		t.Errorf("raw I/O in use: %v, want %v on %s", got, want, runtime.GOOS)
	}
}
