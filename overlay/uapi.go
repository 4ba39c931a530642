package overlay

// UAPI is WireGuard's cross-platform configuration protocol
// (https://www.wireguard.com/xplatform/): newline-separated key=value
// lines, keys in hex. wireguard-go's Device.IpcSet takes the "set" body as
// a string, and the `wg` tool speaks it over the UAPI socket of a
// userspace implementation. (The kernel module is configured over netlink
// instead; `wg set`/`wg setconf` translate.)

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RenderUAPI returns the "set" body that makes a device exactly c:
// private key, listen port (omitted when 0, which keeps the current one),
// replace_peers=true, then every peer. Addresses and MTU are not part of
// the protocol and are ignored.
func RenderUAPI(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\n", c.PrivateKey.Hex())
	if c.ListenPort != 0 {
		fmt.Fprintf(&b, "listen_port=%d\n", c.ListenPort)
	}
	b.WriteString("replace_peers=true\n")
	for _, p := range c.Peers {
		writeUAPIPeer(&b, p)
	}
	return b.String()
}

// RenderUAPIDiff returns the "set" body that applies d to a device, peers
// only: removals first (freeing their keys and allowed IPs), then changes
// (update_only=true, so that a change never creates a peer), then
// additions. Every changed or added peer gets its endpoint, keepalive and
// replace_allowed_ips=true with its allowed IPs. An empty diff renders as
// "".
func RenderUAPIDiff(d Diff) string {
	var b strings.Builder
	for _, p := range d.Removed {
		fmt.Fprintf(&b, "public_key=%s\nremove=true\n", p.PublicKey.Hex())
	}
	for _, p := range d.Changed {
		fmt.Fprintf(&b, "public_key=%s\nupdate_only=true\n", p.PublicKey.Hex())
		writeUAPIPeerBody(&b, p)
	}
	for _, p := range d.Added {
		writeUAPIPeer(&b, p)
	}
	return b.String()
}

func writeUAPIPeer(b *strings.Builder, p Peer) {
	fmt.Fprintf(b, "public_key=%s\n", p.PublicKey.Hex())
	writeUAPIPeerBody(b, p)
}

func writeUAPIPeerBody(b *strings.Builder, p Peer) {
	if p.Endpoint.IsValid() {
		fmt.Fprintf(b, "endpoint=%s\n", p.Endpoint)
	}
	fmt.Fprintf(b, "persistent_keepalive_interval=%d\n", keepaliveSeconds(p.PersistentKeepalive))
	b.WriteString("replace_allowed_ips=true\n")
	for _, pfx := range p.AllowedIPs {
		fmt.Fprintf(b, "allowed_ip=%s\n", pfx)
	}
}

// keepaliveSeconds converts a keepalive period to the protocol's whole
// seconds, clamped to its uint16 range.
func keepaliveSeconds(d time.Duration) int {
	s := int64(d / time.Second)
	return int(min(max(s, 0), 65535))
}

// ParseUAPI reads the output of a "get" operation (Device.IpcGet) back into
// a Config: private key, listen port and, per peer, public key, endpoint,
// keepalive and allowed IPs. Statistics (handshake times, byte counts) and
// set-only directives are ignored. Peers are in the device's order.
func ParseUAPI(s string) (Config, error) {
	var c Config
	cur := -1 // index of the peer being read
	sc := bufio.NewScanner(strings.NewReader(s))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return Config{}, fmt.Errorf("overlay: UAPI line %d: no '=' in %q", line, text)
		}
		var err error
		switch key {
		case "private_key":
			var k Key
			k, err = ParseHexKey(value)
			c.PrivateKey = PrivateKey(k)
		case "listen_port":
			var port uint64
			port, err = strconv.ParseUint(value, 10, 16)
			c.ListenPort = uint16(port)
		case "public_key":
			var k Key
			if k, err = ParseHexKey(value); err == nil {
				c.Peers = append(c.Peers, Peer{PublicKey: k})
				cur = len(c.Peers) - 1
			}
		case "endpoint", "persistent_keepalive_interval", "allowed_ip":
			if cur < 0 {
				return Config{}, fmt.Errorf("overlay: UAPI line %d: %s before any public_key", line, key)
			}
			err = parseUAPIPeerLine(&c.Peers[cur], key, value)
		}
		if err != nil {
			return Config{}, fmt.Errorf("overlay: UAPI line %d: %s: %w", line, key, err)
		}
	}
	return c, sc.Err()
}

func parseUAPIPeerLine(p *Peer, key, value string) error {
	switch key {
	case "endpoint":
		ap, err := netip.ParseAddrPort(value)
		p.Endpoint = ap
		return err
	case "persistent_keepalive_interval":
		secs, err := strconv.ParseUint(value, 10, 16)
		p.PersistentKeepalive = time.Duration(secs) * time.Second
		return err
	default: // allowed_ip
		pfx, err := netip.ParsePrefix(value)
		if err == nil {
			p.AllowedIPs = append(p.AllowedIPs, pfx)
		}
		return err
	}
}
