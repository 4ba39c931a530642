package overlay

import "fmt"

// EventKind is the kind of a TopologyEvent.
type EventKind uint8

// Event kinds, as the seed's TopologyEvent.
const (
	// Joined: a live node publishes a valid entry for a node_id not in the
	// view.
	Joined EventKind = iota + 1
	// Updated: a peer's entry changed (key rotation, endpoint, IP, labels).
	Updated
	// Left: the peer's entry was deleted or became malformed, or its node
	// is dead (and later garbage collected: no second event).
	Left
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "Joined"
	case Updated:
		return "Updated"
	case Left:
		return "Left"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// TopologyEvent is one change of the pool's view of its peers.
type TopologyEvent struct {
	Kind   EventKind
	NodeID uint64
	// Peer is the new entry for Joined and Updated, the last known one for
	// Left.
	Peer PeerInfo
}

func (e TopologyEvent) String() string {
	return fmt.Sprintf("%v(%d %v %v)", e.Kind, e.NodeID, e.Peer.OverlayIP, e.Peer.Endpoint)
}

// diffInfos returns the events that turn old into new (both in node_id
// order): Left first, then Joined and Updated, each in node_id order.
func diffInfos(old, new []PeerInfo) []TopologyEvent {
	var left, rest []TopologyEvent
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i].NodeID < new[j].NodeID):
			left = append(left, TopologyEvent{Kind: Left, NodeID: old[i].NodeID, Peer: old[i].Clone()})
			i++
		case i == len(old) || new[j].NodeID < old[i].NodeID:
			rest = append(rest, TopologyEvent{Kind: Joined, NodeID: new[j].NodeID, Peer: new[j].Clone()})
			j++
		default:
			if !old[i].Equal(new[j]) {
				rest = append(rest, TopologyEvent{Kind: Updated, NodeID: new[j].NodeID, Peer: new[j].Clone()})
			}
			i++
			j++
		}
	}
	return append(left, rest...)
}
