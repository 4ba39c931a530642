package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// defaultDNSBasePort is Consul's DNS port: node_0 answers there, as a
// local Consul agent would.
const defaultDNSBasePort = "8600"

// parseDNSBasePort validates --dns_base_port: 0, or a port such that the n
// DNS ports lie in 1..65535 and clear of the gossip ports.
func parseDNSBasePort(s string, n int, gossipBase uint16, bad func(string, ...any)) uint16 {
	v, err := strconv.ParseUint(s, 10, 16)
	switch {
	case err != nil || (v > 0 && int(v)+n-1 > 65535):
		bad("--dns_base_port %q: must be 0 (no DNS) or a port such that dns_base_port..dns_base_port+n-1 lie in 1..65535", s)
		return 0
	case v > 0 && n > 0 && gossipBase > 0 && int(v) < int(gossipBase)+n && int(gossipBase) < int(v)+n:
		bad("--dns_base_port %d: the DNS ports %d..%d overlap the nodes' ports %d..%d; pick another", v, v, int(v)+n-1, gossipBase, int(gossipBase)+n-1)
		return 0
	}
	return uint16(v)
}

// dnsAddr is where node i serves DNS.
func (o clusterOptions) dnsAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(o.host, o.dnsBasePort+uint16(i))
}

// checkDNSPorts reports whether node name's DNS address is taken.
func checkDNSPorts(a netip.AddrPort, name string) []error {
	var errs []error
	if ln, err := net.Listen("tcp", a.String()); err != nil {
		errs = append(errs, fmt.Errorf("%v/TCP (DNS of %s) is not available: %v", a, name, stripOpErr(err)))
	} else {
		ln.Close()
	}
	if pc, err := net.ListenPacket("udp", a.String()); err != nil {
		errs = append(errs, fmt.Errorf("%v/UDP (DNS of %s) is not available: %v", a, name, stripOpErr(err)))
	} else {
		pc.Close()
	}
	return errs
}
