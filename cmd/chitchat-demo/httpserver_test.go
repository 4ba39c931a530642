package main

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// --listen_addr 0.0.0.0:port serves IPv4 only: [::1]:port refuses the
// connection (it would be accepted by a dual-stack listener).
func TestListenHTTPIPv4WildcardIsIPv4Only(t *testing.T) {
	ln, err := listenHTTP(netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	v4, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatalf("127.0.0.1:%d: %v", port, err)
	}
	v4.Close()
	if probe, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		probe.Close()
	}
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	c, err := net.Dial("tcp", v6.String())
	if err == nil {
		c.Close()
		t.Fatalf("%v accepted a connection: the listener on 0.0.0.0 also serves IPv6", v6)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %v = %v, want connection refused", v6, err)
	}
}
