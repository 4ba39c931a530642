package overlay

// The conversion from gossip to WireGuard is two pure steps, in the manner
// of tailscale's nmcfg.WGCfg:
//
//	chitchat.Snapshot ──FromSnapshot──▶ []PeerInfo ──Build──▶ []Peer
//
// Neither step fails as a whole: an entry that cannot be used is left out
// and reported as a Skipped, and the caller decides how loudly to log it.

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// SkipReason says why an entry was left out.
type SkipReason uint8

// Skip reasons.
const (
	// SkipMalformed: the value does not decode, fails PeerInfo.Validate, or
	// its node_id differs from the one in its key.
	SkipMalformed SkipReason = iota + 1
	// SkipSuperseded: the entry's chitchat node has a newer live
	// incarnation (same name, higher generation): it restarted.
	SkipSuperseded
	// SkipSelf: an entry carries our own node_id but comes from another
	// chitchat node (a previous incarnation of this node, not yet dead).
	SkipSelf
	// SkipOwnKey: the peer has this device's public key.
	SkipOwnKey
	// SkipDuplicateKey: an earlier peer already has this public key.
	SkipDuplicateKey
	// SkipDuplicateIP: this overlay IP is ours or an earlier peer's.
	SkipDuplicateIP
	// SkipDuplicateID: another chitchat node holds this worker id.
	SkipDuplicateID
	// SkipRefused: the overlay IP or the endpoint is refused: outside the
	// overlay prefixes, or loopback, link-local, multicast, broadcast or
	// unspecified (see BuildOptions).
	SkipRefused
)

func (r SkipReason) String() string {
	switch r {
	case SkipMalformed:
		return "malformed"
	case SkipSuperseded:
		return "superseded"
	case SkipSelf:
		return "self"
	case SkipOwnKey:
		return "own-key"
	case SkipDuplicateKey:
		return "duplicate-key"
	case SkipDuplicateIP:
		return "duplicate-ip"
	case SkipDuplicateID:
		return "duplicate-id"
	case SkipRefused:
		return "refused"
	}
	return fmt.Sprintf("SkipReason(%d)", uint8(r))
}

// Skipped is an entry left out of a conversion.
type Skipped struct {
	Reason SkipReason
	// Node is the chitchat node that holds the entry (zero from Build).
	Node chitchat.NodeID
	// Key is the gossip key, e.g. "worker:42".
	Key string
	// NodeID is the worker id of the entry (from its key, or from the
	// PeerInfo for Build).
	NodeID uint64
	// Value is the raw gossip value (empty from Build).
	Value string
	// Err details the problem of a malformed entry.
	Err error
}

func (s Skipped) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", s.Key, s.Reason)
	if s.Node != (chitchat.NodeID{}) {
		fmt.Fprintf(&b, " from %v", s.Node)
	}
	if s.Err != nil {
		fmt.Fprintf(&b, ": %v", s.Err)
	}
	return b.String()
}

// FromSnapshot returns the valid PeerInfo entries of the live nodes of snap
// other than snap.Self, in node_id order, and reports every entry it
// leaves out. selfNodeID is this worker's id: an entry carrying it from
// another chitchat node is skipped (SkipSelf). An older incarnation of a
// chitchat node (same name, lower generation) is superseded by the newer
// one. Claims to the same worker id, public key or overlay IP by different
// nodes are resolved as claims.go says, without history: the earliest
// chitchat generation (the first to start) keeps it. A Pool resolves with
// its previous view instead, so that an established worker keeps what it
// holds.
func FromSnapshot(snap chitchat.Snapshot, selfNodeID uint64) (peers []PeerInfo, skipped []Skipped) {
	cands, skipped := candidates(snap, selfNodeID)
	view, conflicts := resolve(nil, cands, PeerInfo{})
	return infosOf(view), append(skipped, conflicts...)
}

// BuildOptions tunes Build.
type BuildOptions struct {
	// SelfPublicKey is this device's public key: a peer with it is skipped
	// (WireGuard would ignore it).
	SelfPublicKey Key
	// SelfOverlayIP is this device's overlay address: a peer claiming it is
	// skipped. SelfOverlayIP6 is the IPv6 one of a dual-stack device.
	SelfOverlayIP, SelfOverlayIP6 netip.Addr
	// PersistentKeepalive is set on every peer; 0 is off. It is rounded
	// down to whole seconds.
	PersistentKeepalive time.Duration
	// OverlayPrefixes are the prefixes overlay IPs must fall in: a peer
	// whose overlay IP is outside every one (or is the broadcast address of
	// an IPv4 one) is refused. Empty means DefaultOverlayPrefixes (the
	// private ranges). Overlay IPs that are loopback, link-local,
	// multicast, broadcast or unspecified are refused whatever the
	// prefixes.
	OverlayPrefixes []netip.Prefix
	// AllowLoopbackEndpoints accepts peers whose endpoint is a loopback
	// address (127.0.0.0/8, ::1). Off by default: between hosts such an
	// endpoint is a mistake or an attempt to make this host send to its
	// own services. Turn it on when every worker runs on this host, as in
	// local demos and tests. Link-local, multicast, broadcast and
	// unspecified endpoints are always refused.
	AllowLoopbackEndpoints bool
}

// Build converts peer infos to WireGuard peers, in input order. An info
// that fails Validate (SkipMalformed), whose overlay IP or endpoint opts
// refuses (SkipRefused), that has our key or IP, or that repeats an earlier
// peer's public key or overlay IP is skipped and reported; the first one
// wins. Each peer routes exactly its overlay addresses (/32 or /128; a
// dual-stack peer both).
func Build(infos []PeerInfo, opts BuildOptions) (peers []Peer, skipped []Skipped) {
	keys := make(map[Key]uint64, len(infos))
	ips := make(map[netip.Addr]uint64, len(infos))
	keepalive := opts.PersistentKeepalive.Truncate(time.Second)
	for _, info := range infos {
		bad := Skipped{Key: GossipKey(info.NodeID), NodeID: info.NodeID}
		if err := info.Validate(); err != nil {
			bad.Reason, bad.Err = SkipMalformed, err
			skipped = append(skipped, bad)
			continue
		}
		ovl := unmapAll(info.OverlayIPs())
		if err := checkOverlayIPs(ovl, opts.OverlayPrefixes); err != nil {
			bad.Reason, bad.Err = SkipRefused, err
			skipped = append(skipped, bad)
			continue
		}
		if err := checkEndpoint(info.Endpoint, opts.AllowLoopbackEndpoints); err != nil {
			bad.Reason, bad.Err = SkipRefused, fmt.Errorf("wg_endpoint: %w", err)
			skipped = append(skipped, bad)
			continue
		}
		if info.PublicKey == opts.SelfPublicKey {
			bad.Reason = SkipOwnKey
			skipped = append(skipped, bad)
			continue
		}
		if other, dup := keys[info.PublicKey]; dup {
			bad.Reason, bad.Err = SkipDuplicateKey, fmt.Errorf("public key of node %d", other)
			skipped = append(skipped, bad)
			continue
		}
		if err := dupIP(ovl, ips, opts); err != nil {
			bad.Reason, bad.Err = SkipDuplicateIP, err
			skipped = append(skipped, bad)
			continue
		}
		keys[info.PublicKey] = info.NodeID
		allowed := make([]netip.Prefix, len(ovl))
		for i, ip := range ovl {
			ips[ip] = info.NodeID
			allowed[i] = hostPrefix(ip)
		}
		peers = append(peers, Peer{
			PublicKey:           info.PublicKey,
			Endpoint:            unmapAddrPort(info.Endpoint),
			AllowedIPs:          allowed,
			PersistentKeepalive: keepalive,
		})
	}
	return peers, skipped
}

// dupIP says which of ips is ours or an earlier peer's, or returns nil.
func dupIP(ovl []netip.Addr, ips map[netip.Addr]uint64, opts BuildOptions) error {
	for _, ip := range ovl {
		for _, self := range []netip.Addr{opts.SelfOverlayIP, opts.SelfOverlayIP6} {
			if self.IsValid() && ip == self.Unmap() {
				return fmt.Errorf("overlay IP %v is ours", ip)
			}
		}
		if other, dup := ips[ip]; dup {
			return fmt.Errorf("overlay IP %v of node %d", ip, other)
		}
	}
	return nil
}

func unmapAll(ips []netip.Addr) []netip.Addr {
	for i, ip := range ips {
		ips[i] = ip.Unmap()
	}
	return ips
}
