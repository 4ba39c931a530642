//go:build !linux

package main

import (
	"net"
	"net/netip"
)

// listenDNSUDP binds addr for UDP. (On Linux, on an unspecified address,
// answers leave from the address their query was sent to.)
func listenDNSUDP(addr netip.AddrPort) (net.PacketConn, error) {
	return net.ListenPacket("udp", addr.String())
}
