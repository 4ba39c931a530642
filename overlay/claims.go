package overlay

// Overlay identity. A worker entry is bound to the chitchat node that
// publishes it (its name and generation), and the first live claimant of a
// worker id, an overlay IP or a public key keeps it:
//
//	snapshot ─candidates─▶ every live node's valid entries, each with its publisher
//	         ─resolve(prev view)─▶ the view, and the quarantined entries
//
// resolve hands each resource (worker id, overlay IP, public key) out in
// this order of claimants:
//
//  0. entries of the previous view whose publisher, key and IP are
//     unchanged (established, and claiming what they already hold);
//  1. entries of the previous view's workers, same publisher name, whose
//     key or IP changed (a rotation, a move, a restart of the same node);
//  2. newcomers, earliest chitchat generation first (the generation is the
//     start time: the worker that started first claimed first), then by
//     worker id.
//
// An entry that finds one of its resources taken is quarantined whole: not
// in the view, not configured. Quarantine lasts while the holder lives and
// publishes the resource; when it leaves, dies, or lets go, the next sync
// gives the resource to the next claimant. A newcomer therefore never takes
// an established worker's traffic by announcing its IP or key, whatever
// its worker id (before, the lowest worker id won).
//
// A newer incarnation of a chitchat node (same name, higher generation)
// supersedes the older one: a restart, not a conflict.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// claim is a worker entry bound to the chitchat node that publishes it.
type claim struct {
	info PeerInfo
	node chitchat.NodeID
	key  string // the gossip key, "worker:<id>"
}

// publishes reports whether node id holds a key under KeyPrefix in snap.
func publishes(snap chitchat.Snapshot, id chitchat.NodeID) bool {
	ns, ok := snap.Node(id)
	if !ok {
		return false
	}
	for range ns.Prefix(KeyPrefix) {
		return true
	}
	return false
}

// candidates returns the valid entries of every live node of snap other
// than snap.Self, with their publishers, and the entries skipped: malformed
// ones, those of an incarnation superseded by a newer live one of the same
// name that publishes an entry too (snap.Self's older incarnations
// included: until a restarted node's entry arrives, which can be a message
// after the node itself is live, its previous entry stands, and the change
// is one Updated event rather than Left then Joined), and those carrying
// selfNodeID from another node. Keys under KeyPrefix whose suffix is not a
// decimal u64 are ignored, as the seed ignores them.
func candidates(snap chitchat.Snapshot, selfNodeID uint64) (cands []claim, skipped []Skipped) {
	live := make(map[chitchat.NodeID]bool, len(snap.Live))
	newest := map[string]chitchat.NodeID{snap.Self.Name: snap.Self} // live incarnation per name
	for _, id := range snap.Live {
		live[id] = true
		if id != snap.Self && !publishes(snap, id) {
			continue
		}
		if n, ok := newest[id.Name]; !ok || id.Generation > n.Generation {
			newest[id.Name] = id
		}
	}
	for _, ns := range snap.Nodes {
		node := ns.ID()
		if node == snap.Self || !live[node] {
			continue
		}
		superseded := newest[node.Name] != node
		for key, vv := range ns.Prefix(KeyPrefix) {
			id, ok := ParseGossipKey(key)
			if !ok {
				continue
			}
			bad := Skipped{Reason: SkipMalformed, Node: node, Key: key, NodeID: id, Value: vv.Value}
			info, err := DecodeValue(vv.Value)
			switch {
			case err != nil:
				bad.Err = err
			case info.NodeID != id:
				bad.Err = fmt.Errorf("node_id %d under key %s", info.NodeID, key)
			case superseded:
				bad.Reason, bad.Err = SkipSuperseded, fmt.Errorf("superseded by %v", newest[node.Name])
			case id == selfNodeID:
				bad.Reason, bad.Err = SkipSelf, fmt.Errorf("worker id %d is this worker's", id)
			default:
				cands = append(cands, claim{info: info, node: node, key: key})
				continue
			}
			skipped = append(skipped, bad)
		}
	}
	return cands, skipped
}

// resolve returns the view (in worker id order) that cands make, given the
// previous view prev, and the entries it quarantines (see the top of this
// file). self is this worker's entry: its key and overlay IP are taken
// before anyone's (a zero key or an invalid IP takes nothing).
func resolve(prev, cands []claim, self PeerInfo) (view []claim, skipped []Skipped) {
	type holder struct {
		name string
		info PeerInfo
	}
	was := make(map[uint64]holder, len(prev))
	for _, c := range prev {
		was[c.info.NodeID] = holder{c.node.Name, c.info}
	}
	rank := func(c claim) int {
		h, ok := was[c.info.NodeID]
		switch {
		case !ok || h.name != c.node.Name:
			return 2
		case h.info.PublicKey == c.info.PublicKey && slices.Equal(unmapAll(h.info.OverlayIPs()), unmapAll(c.info.OverlayIPs())):
			return 0
		}
		return 1
	}
	order := slices.Clone(cands)
	slices.SortStableFunc(order, func(a, b claim) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			cmp.Compare(a.node.Generation, b.node.Generation),
			cmp.Compare(a.info.NodeID, b.info.NodeID),
			a.node.Compare(b.node),
		)
	})

	ids := make(map[uint64]claim, len(order))
	keys := make(map[Key]claim, len(order))
	ips := make(map[netip.Addr]claim, len(order))
	selfIPs := unmapAll(self.OverlayIPs())
	for _, c := range order {
		bad := Skipped{Node: c.node, Key: c.key, NodeID: c.info.NodeID}
		ovl := unmapAll(c.info.OverlayIPs())
		ipTaken := func() (netip.Addr, claim, bool, bool) { // ip, holder, taken, by self
			for _, ip := range ovl {
				if ip.IsValid() && slices.Contains(selfIPs, ip) {
					return ip, claim{}, true, true
				}
				if h, taken := ips[ip]; taken {
					return ip, h, true, false
				}
			}
			return netip.Addr{}, claim{}, false, false
		}
		ip, ipHolder, ipIsTaken, ipIsSelf := ipTaken()
		if h, taken := ids[c.info.NodeID]; taken {
			bad.Reason, bad.Err = SkipDuplicateID, fmt.Errorf("worker id %d is held by %v", c.info.NodeID, h.node)
		} else if !self.PublicKey.IsZero() && c.info.PublicKey == self.PublicKey {
			bad.Reason, bad.Err = SkipOwnKey, fmt.Errorf("public key %v is this worker's", c.info.PublicKey)
		} else if h, taken := keys[c.info.PublicKey]; taken {
			bad.Reason, bad.Err = SkipDuplicateKey, fmt.Errorf("public key %v is held by worker %d (%v)", c.info.PublicKey, h.info.NodeID, h.node)
		} else if ipIsSelf {
			bad.Reason, bad.Err = SkipDuplicateIP, fmt.Errorf("overlay IP %v is this worker's", ip)
		} else if ipIsTaken {
			bad.Reason, bad.Err = SkipDuplicateIP, fmt.Errorf("overlay IP %v is held by worker %d (%v)", ip, ipHolder.info.NodeID, ipHolder.node)
		}
		if bad.Reason != 0 {
			skipped = append(skipped, bad)
			continue
		}
		ids[c.info.NodeID], keys[c.info.PublicKey] = c, c
		for _, ip := range ovl {
			ips[ip] = c
		}
		view = append(view, c)
	}
	slices.SortFunc(view, func(a, b claim) int { return cmp.Compare(a.info.NodeID, b.info.NodeID) })
	return view, skipped
}

// IsConflict reports whether r quarantines an entry that claims what
// another worker holds (a worker id, a public key or an overlay IP), as
// opposed to an entry that is unusable on its own.
func (r SkipReason) IsConflict() bool {
	switch r {
	case SkipSelf, SkipOwnKey, SkipDuplicateID, SkipDuplicateKey, SkipDuplicateIP:
		return true
	}
	return false
}

func infosOf(view []claim) []PeerInfo {
	out := make([]PeerInfo, len(view))
	for i, c := range view {
		out[i] = c.info.Clone()
	}
	return out
}
