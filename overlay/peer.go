package overlay

import (
	"net/netip"
	"slices"
	"time"
)

// Peer is one WireGuard peer as a device is configured with it (wgcfg.Peer
// in tailscale's terms). It is a plain value: Build makes it from gossip,
// Diff compares two sets, RenderUAPI and RenderWGQuick print it.
type Peer struct {
	// PublicKey identifies the peer; WireGuard keys its peer table by it.
	PublicKey Key
	// Endpoint is the peer's WireGuard UDP address.
	Endpoint netip.AddrPort
	// AllowedIPs are the overlay addresses routed to the peer: its overlay
	// address as a /32 (IPv4) or /128 (IPv6).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is the keepalive period, in whole seconds; 0 is
	// off.
	PersistentKeepalive time.Duration
}

// Equal reports whether p and o configure a device the same way.
// AllowedIPs are compared in order.
func (p Peer) Equal(o Peer) bool {
	return p.PublicKey == o.PublicKey &&
		p.Endpoint == o.Endpoint &&
		slices.Equal(p.AllowedIPs, o.AllowedIPs) &&
		p.PersistentKeepalive == o.PersistentKeepalive
}

// Clone returns a copy of p that shares no memory with it.
func (p Peer) Clone() Peer {
	p.AllowedIPs = slices.Clone(p.AllowedIPs)
	return p
}

// Config is a whole device: the interface and its peers. The UAPI form uses
// PrivateKey, ListenPort and Peers; the wg-quick form also uses Addresses
// and MTU.
type Config struct {
	// PrivateKey is the device's private key. It never prints (see
	// PrivateKey), so neither does the private key of a printed Config.
	PrivateKey PrivateKey
	// ListenPort is the device's UDP port; 0 means "any" (omitted).
	ListenPort uint16
	// Addresses are the interface's own overlay addresses (wg-quick's
	// Address =), e.g. 10.200.0.1/32.
	Addresses []netip.Prefix
	// MTU is the interface MTU for wg-quick; 0 omits it.
	MTU int
	// Peers in the order they are rendered.
	Peers []Peer
}

// Equal reports whether c and o are the same configuration, peers in
// order.
func (c Config) Equal(o Config) bool {
	return c.PrivateKey == o.PrivateKey &&
		c.ListenPort == o.ListenPort &&
		slices.Equal(c.Addresses, o.Addresses) &&
		c.MTU == o.MTU &&
		slices.EqualFunc(c.Peers, o.Peers, Peer.Equal)
}

// Clone returns a copy of c that shares no memory with it.
func (c Config) Clone() Config {
	c.Addresses = slices.Clone(c.Addresses)
	c.Peers = clonePeers(c.Peers)
	return c
}

func clonePeers(ps []Peer) []Peer {
	if ps == nil {
		return nil
	}
	out := make([]Peer, len(ps))
	for i, p := range ps {
		out[i] = p.Clone()
	}
	return out
}

// unmapAddrPort returns ap with an IPv4-mapped IPv6 address made IPv4.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// hostPrefix returns ip as a single-address prefix: /32 or /128. IPv4-mapped
// IPv6 addresses become IPv4.
func hostPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	return netip.PrefixFrom(ip, ip.BitLen())
}

// hostPrefixes returns hostPrefix of each of ips.
func hostPrefixes(ips []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, len(ips))
	for i, ip := range ips {
		out[i] = hostPrefix(ip)
	}
	return out
}
