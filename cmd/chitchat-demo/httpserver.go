package main

// The HTTP listener and server of a node.

import (
	"net"
	"net/netip"
)

// listenHTTP binds the HTTP API's TCP listener on addr: "tcp4" for an IPv4
// address, so that 0.0.0.0 binds IPv4 only (Go's "tcp" would make it a
// dual-stack socket that also answers on [::1] and every IPv6 address, past
// IPv4-only firewall rules); "tcp" otherwise, so that "::" stays
// dual-stack. The gossip socket follows the same rule (transport.UDP).
func listenHTTP(addr netip.AddrPort) (net.Listener, error) {
	network := "tcp"
	if addr.Addr().Is4() {
		network = "tcp4"
	}
	return net.Listen(network, addr.String())
}
