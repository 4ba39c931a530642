package overlay

// Which addresses an entry may announce. Every overlay IP becomes a route
// into the tunnel (AllowedIPs, and the routes of a TUN device), and every
// endpoint a destination of this host's UDP traffic, so an entry must not
// name addresses that mean something else on this host: its loopback, the
// link-local networks (169.254.169.254 is the cloud metadata service),
// multicast, broadcast, or the unspecified address. Overlay IPs must also
// fall in the overlay's prefixes, so that no entry routes, say, 8.8.8.8 into
// the tunnel.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// DefaultOverlayPrefixes returns the prefixes overlay IPs must fall in when
// none are configured: the private ranges of RFC 1918 (10/8, 172.16/12,
// 192.168/16), the shared address space of RFC 6598 (100.64/10, as
// Tailscale uses) and IPv6 unique local addresses (fc00::/7).
func DefaultOverlayPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// checkOverlayIP says why ip cannot be an overlay address within prefixes
// (DefaultOverlayPrefixes if empty), or returns nil.
func checkOverlayIP(ip netip.Addr, prefixes []netip.Prefix) error {
	ip = ip.Unmap()
	if err := checkAddrClass(ip, false); err != nil {
		return err
	}
	if len(prefixes) == 0 {
		prefixes = DefaultOverlayPrefixes()
	}
	i := slices.IndexFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
	if i < 0 {
		return fmt.Errorf("%v is outside the overlay prefixes %v", ip, prefixes)
	}
	if p := prefixes[i].Masked(); ip.Is4() && p.Bits() <= 30 && ip == lastAddr(p) {
		return fmt.Errorf("%v is the broadcast address of %v", ip, p)
	}
	return nil
}

// checkOverlayIPs checks each of ips as checkOverlayIP does.
func checkOverlayIPs(ips []netip.Addr, prefixes []netip.Prefix) error {
	for _, ip := range ips {
		if err := checkOverlayIP(ip, prefixes); err != nil {
			return fmt.Errorf("overlay IP: %w", err)
		}
	}
	return nil
}

// checkEndpoint says why ap cannot be a peer's WireGuard endpoint, or
// returns nil. Loopback is refused unless allowLoopback.
func checkEndpoint(ap netip.AddrPort, allowLoopback bool) error {
	if !ap.IsValid() || ap.Port() == 0 {
		return fmt.Errorf("%v is not an ip:port with a port", ap)
	}
	return checkAddrClass(ap.Addr().Unmap(), allowLoopback)
}

// checkAddrClass refuses the address classes that are never an overlay IP
// nor an endpoint.
func checkAddrClass(ip netip.Addr, allowLoopback bool) error {
	switch {
	case !ip.IsValid():
		return errors.New("no address")
	case ip.IsUnspecified():
		return fmt.Errorf("%v is the unspecified address", ip)
	case ip.IsLoopback() && !allowLoopback:
		return fmt.Errorf("%v is a loopback address", ip)
	case ip.IsMulticast():
		return fmt.Errorf("%v is a multicast address", ip)
	case ip.IsLinkLocalUnicast():
		return fmt.Errorf("%v is a link-local address", ip)
	case ip == limitedBroadcast:
		return fmt.Errorf("%v is the broadcast address", ip)
	}
	return nil
}

// lastAddr returns the highest address of p (masked).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		keep := min(max(p.Bits()-8*i, 0), 8)
		b[i] |= byte(0xff >> keep)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
