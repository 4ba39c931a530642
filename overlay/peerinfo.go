package overlay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Gossip key names. One key per worker, as the seed (zlayer-overlay) does:
//
//	worker:<node_id> → base64url-no-pad(JSON(PeerInfo))
const (
	// KeyPrefix starts every overlay key; the pool subscribes to it.
	KeyPrefix = "worker:"
)

// GossipKey returns the key a worker publishes its PeerInfo under:
// "worker:<nodeID>". The seed also names its chitchat node this way.
func GossipKey(nodeID uint64) string { return KeyPrefix + strconv.FormatUint(nodeID, 10) }

// ParseGossipKey returns the node id of a "worker:<id>" key. Like the seed,
// it accepts only a decimal u64 after the prefix (no sign, no spaces).
func ParseGossipKey(key string) (nodeID uint64, ok bool) {
	s, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok || s == "" || s[0] == '+' {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// PeerInfo is what one worker publishes about itself. Its JSON is the
// seed's serde form, field for field and in this order:
//
//	{"node_id":42,"wg_pubkey":"<base64url, no padding>","wg_endpoint":"203.0.113.7:51820",
//	 "overlay_ip":"10.200.0.42","labels":{"zone":"a"}}
//
// labels may be absent on input (serde default) and is always written,
// as {} when empty.
//
// A dual-stack worker adds "overlay_ip6" (after labels), its IPv6 overlay
// address; its overlay_ip is then IPv4. The seed ignores the field (serde
// skips unknown fields), and it is absent from single-stack entries, whose
// JSON stays the seed's byte for byte.
type PeerInfo struct {
	NodeID    uint64            // node_id
	PublicKey Key               // wg_pubkey: base64url without padding on output; any base64 on input
	Endpoint  netip.AddrPort    // wg_endpoint: "ip:port" ("[v6]:port"), the WireGuard UDP address
	OverlayIP netip.Addr        // overlay_ip: the worker's address inside the overlay
	Labels    map[string]string // labels
	// OverlayIP6 is overlay_ip6: a dual-stack worker's IPv6 overlay
	// address (OverlayIP is then IPv4); the zero Addr for a single-stack
	// worker.
	OverlayIP6 netip.Addr
}

// OverlayIPs returns the worker's overlay addresses: OverlayIP, then
// OverlayIP6 if set.
func (p PeerInfo) OverlayIPs() []netip.Addr {
	if p.OverlayIP6.IsValid() {
		return []netip.Addr{p.OverlayIP, p.OverlayIP6}
	}
	return []netip.Addr{p.OverlayIP}
}

// Validate reports every reason why p cannot be published or used as a
// WireGuard peer. It does not modify p.
func (p PeerInfo) Validate() error {
	var errs []error
	if p.PublicKey.IsZero() {
		errs = append(errs, errors.New("wg_pubkey is missing (all zeros)"))
	}
	switch ep := p.Endpoint; {
	case !ep.IsValid():
		errs = append(errs, errors.New("wg_endpoint is not a valid ip:port"))
	case ep.Port() == 0:
		errs = append(errs, fmt.Errorf("wg_endpoint %v has port 0", ep))
	case ep.Addr().IsUnspecified():
		errs = append(errs, fmt.Errorf("wg_endpoint %v is the unspecified address: announce an address peers can reach", ep))
	case !numericZone(ep.Addr().Zone()):
		errs = append(errs, fmt.Errorf("wg_endpoint %v has a named zone: Rust's SocketAddr only takes a numeric scope id", ep))
	}
	switch ip := p.OverlayIP; {
	case !ip.IsValid():
		errs = append(errs, errors.New("overlay_ip is not a valid IP address"))
	case ip.IsUnspecified():
		errs = append(errs, fmt.Errorf("overlay_ip %v is the unspecified address", ip))
	case ip.Zone() != "":
		errs = append(errs, fmt.Errorf("overlay_ip %v has a zone", ip))
	}
	if ip6 := p.OverlayIP6; ip6.IsValid() {
		switch {
		case !ip6.Is6() || ip6.Is4In6() || ip6.IsUnspecified() || ip6.Zone() != "":
			errs = append(errs, fmt.Errorf("overlay_ip6 %v is not a plain IPv6 address", ip6))
		case p.OverlayIP.IsValid() && !p.OverlayIP.Unmap().Is4():
			errs = append(errs, fmt.Errorf("overlay_ip6 %v with an IPv6 overlay_ip %v: a dual-stack worker's overlay_ip is IPv4", ip6, p.OverlayIP))
		}
	}
	return errors.Join(errs...)
}

func numericZone(z string) bool {
	for _, c := range z {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Equal reports whether p and o are the same, with a nil and an empty
// Labels map equal.
func (p PeerInfo) Equal(o PeerInfo) bool {
	return p.NodeID == o.NodeID && p.PublicKey == o.PublicKey && p.Endpoint == o.Endpoint &&
		p.OverlayIP == o.OverlayIP && maps.Equal(p.Labels, o.Labels) && p.OverlayIP6 == o.OverlayIP6
}

// Clone returns a copy of p that shares no memory with it.
func (p PeerInfo) Clone() PeerInfo {
	p.Labels = maps.Clone(p.Labels)
	return p
}

// MarshalJSON writes the seed's JSON byte for byte (serde_json's compact
// form and string escaping). Labels are written in key order; serde writes
// a HashMap in arbitrary order, so with two or more labels the bytes may
// differ from the seed's while meaning the same. It fails if p is not
// valid.
func (p PeerInfo) MarshalJSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("overlay: encode PeerInfo of node %d: %w", p.NodeID, err)
	}
	var b bytes.Buffer
	b.WriteString(`{"node_id":`)
	b.WriteString(strconv.FormatUint(p.NodeID, 10))
	b.WriteString(`,"wg_pubkey":`)
	writeSerdeString(&b, p.PublicKey.URLString())
	b.WriteString(`,"wg_endpoint":`)
	writeSerdeString(&b, p.Endpoint.String())
	b.WriteString(`,"overlay_ip":`)
	writeSerdeString(&b, p.OverlayIP.String())
	b.WriteString(`,"labels":{`)
	for i, k := range slices.Sorted(maps.Keys(p.Labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		writeSerdeString(&b, k)
		b.WriteByte(':')
		writeSerdeString(&b, p.Labels[k])
	}
	b.WriteByte('}')
	if p.OverlayIP6.IsValid() {
		b.WriteString(`,"overlay_ip6":`)
		writeSerdeString(&b, p.OverlayIP6.String())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeSerdeString writes s as serde_json does: only '"', '\\' and control
// characters are escaped (\b \t \n \f \r, else \u00xx in lowercase hex);
// everything else, "<", "&" and U+2028 included, is written as is.
func writeSerdeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// UnmarshalJSON reads the seed's JSON. Field names are matched exactly (as
// serde does, unlike encoding/json's case-insensitive match) and unknown
// fields are ignored; labels may be absent or null. The result must pass
// Validate: a key that is not 32 bytes of base64, an endpoint that is not
// ip:port or an overlay_ip that is not an IP address is an error.
func (p *PeerInfo) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("overlay: decode PeerInfo: %w", err)
	}
	if fields == nil {
		return errors.New("overlay: decode PeerInfo: not a JSON object")
	}
	var (
		v                       PeerInfo
		errs                    []error
		pubkey, endpoint, ovlIP string
	)
	field := func(name string, dst any) bool {
		raw, ok := fields[name]
		if !ok {
			errs = append(errs, fmt.Errorf("missing field %q", name))
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			errs = append(errs, fmt.Errorf("field %q: %w", name, err))
			return false
		}
		return true
	}
	field("node_id", &v.NodeID)
	if field("wg_pubkey", &pubkey) {
		k, err := ParseKey(pubkey)
		if err != nil {
			errs = append(errs, fmt.Errorf("field \"wg_pubkey\": %w", err))
		}
		v.PublicKey = k
	}
	if field("wg_endpoint", &endpoint) {
		ap, err := netip.ParseAddrPort(endpoint)
		if err != nil {
			errs = append(errs, fmt.Errorf("field \"wg_endpoint\": %w", err))
		}
		v.Endpoint = ap
	}
	if field("overlay_ip", &ovlIP) {
		ip, err := netip.ParseAddr(ovlIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("field \"overlay_ip\": %w", err))
		}
		v.OverlayIP = ip
	}
	if _, ok := fields["labels"]; ok {
		field("labels", &v.Labels)
	}
	if raw, ok := fields["overlay_ip6"]; ok && string(raw) != "null" {
		var s string
		if field("overlay_ip6", &s) {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("field \"overlay_ip6\": %w", err))
			}
			v.OverlayIP6 = ip
		}
	}
	if len(errs) == 0 {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("overlay: decode PeerInfo: %w", err)
	}
	*p = v
	return nil
}

// EncodeValue returns the gossip value of p: base64url without padding of
// its JSON, exactly as the seed's announce_self does.
func (p PeerInfo) EncodeValue() (string, error) {
	js, err := p.MarshalJSON()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(js), nil
}

// DecodeValue parses a gossip value written by EncodeValue or by the seed.
// Trailing '=' padding is tolerated; the alphabet must be base64url.
func DecodeValue(v string) (PeerInfo, error) {
	js, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return PeerInfo{}, fmt.Errorf("overlay: decode PeerInfo: not base64url: %w", err)
	}
	var p PeerInfo
	if err := p.UnmarshalJSON(js); err != nil {
		return PeerInfo{}, err
	}
	return p, nil
}
