package overlay

import (
	"fmt"
	"strings"
)

// RenderWGQuick returns c as a wg-quick(8) configuration file:
//
//	[Interface]
//	PrivateKey = <base64>
//	ListenPort = 51820
//	Address = 10.200.0.1/32
//	MTU = 1420
//
//	[Peer]
//	PublicKey = <base64>
//	Endpoint = 203.0.113.7:51820
//	AllowedIPs = 10.200.0.2/32
//	PersistentKeepalive = 25
//
// Keys are in standard base64 (wg's spelling). ListenPort, Address, MTU,
// Endpoint and PersistentKeepalive are omitted when zero. With
// omitPrivateKey the PrivateKey line becomes a comment, for serving the
// file to people who are not the node's operator.
func RenderWGQuick(c Config, omitPrivateKey bool) string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if omitPrivateKey {
		b.WriteString("# PrivateKey = (omitted)\n")
	} else {
		fmt.Fprintf(&b, "PrivateKey = %s\n", c.PrivateKey.Base64())
	}
	if c.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", c.ListenPort)
	}
	if len(c.Addresses) > 0 {
		fmt.Fprintf(&b, "Address = %s\n", joinStrings(c.Addresses))
	}
	if c.MTU != 0 {
		fmt.Fprintf(&b, "MTU = %d\n", c.MTU)
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		fmt.Fprintf(&b, "PublicKey = %s\n", p.PublicKey)
		if p.Endpoint.IsValid() {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if len(p.AllowedIPs) > 0 {
			fmt.Fprintf(&b, "AllowedIPs = %s\n", joinStrings(p.AllowedIPs))
		}
		if s := keepaliveSeconds(p.PersistentKeepalive); s != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", s)
		}
	}
	return b.String()
}

func joinStrings[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}
