package overlay

// Conversions between the mesh's types and wgctrl's (the kernel device
// speaks netlink, not UAPI text): pure, so that they are tested on every
// machine, kernel module or not.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// wgtypesConfig returns the wgctrl configuration that applies d to a
// device's peers, as RenderUAPIDiff does for UAPI: removals, then changes
// (update only), then additions, each with its endpoint, keepalive and
// allowed IPs replaced. With replace, the device's peers become d.Added.
func wgtypesConfig(d Diff, replace bool) wgtypes.Config {
	cfg := wgtypes.Config{ReplacePeers: replace}
	if !replace {
		for _, p := range d.Removed {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: wgtypes.Key(p.PublicKey), Remove: true})
		}
		for _, p := range d.Changed {
			pc := wgtypesPeer(p)
			pc.UpdateOnly = true
			cfg.Peers = append(cfg.Peers, pc)
		}
	}
	for _, p := range d.Added {
		cfg.Peers = append(cfg.Peers, wgtypesPeer(p))
	}
	return cfg
}

func wgtypesPeer(p Peer) wgtypes.PeerConfig {
	keepalive := time.Duration(keepaliveSeconds(p.PersistentKeepalive)) * time.Second
	pc := wgtypes.PeerConfig{
		PublicKey:                   wgtypes.Key(p.PublicKey),
		PersistentKeepaliveInterval: &keepalive,
		ReplaceAllowedIPs:           true,
	}
	if p.Endpoint.IsValid() {
		pc.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
	}
	for _, pfx := range p.AllowedIPs {
		pc.AllowedIPs = append(pc.AllowedIPs, *prefixIPNet(pfx))
	}
	return pc
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// uapiFromWGTypes renders a kernel device's state in UAPI "get" form, so
// that the mesh reads every kind of device the same way (ParseUAPI,
// ParsePeerStats, Mesh.IpcGet).
func uapiFromWGTypes(d *wgtypes.Device) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\n", PrivateKey(d.PrivateKey).Hex())
	fmt.Fprintf(&b, "listen_port=%d\n", d.ListenPort)
	for _, p := range d.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", Key(p.PublicKey).Hex())
		if p.Endpoint != nil {
			fmt.Fprintf(&b, "endpoint=%s\n", unmapAddrPort(p.Endpoint.AddrPort()))
		}
		var sec, nsec int64
		if !p.LastHandshakeTime.IsZero() {
			sec, nsec = p.LastHandshakeTime.Unix(), int64(p.LastHandshakeTime.Nanosecond())
		}
		fmt.Fprintf(&b, "last_handshake_time_sec=%d\nlast_handshake_time_nsec=%d\n", sec, nsec)
		fmt.Fprintf(&b, "tx_bytes=%d\nrx_bytes=%d\n", p.TransmitBytes, p.ReceiveBytes)
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", keepaliveSeconds(p.PersistentKeepaliveInterval))
		for _, ipn := range p.AllowedIPs {
			if pfx, ok := ipNetPrefix(ipn); ok {
				fmt.Fprintf(&b, "allowed_ip=%s\n", pfx)
			}
		}
		fmt.Fprintf(&b, "protocol_version=%d\n", max(p.ProtocolVersion, 1))
	}
	return b.String()
}

func ipNetPrefix(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
