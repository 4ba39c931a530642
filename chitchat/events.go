package chitchat

import (
	"context"
	"fmt"
	"iter"
	"slices"
)

// Membership events: what a memberlist or serf user watches. The Engine
// records, whenever it publishes the live-nodes watch, the difference with
// the previous publication in a bounded ring; each consumer of
// Server.Events reads the ring from its own cursor. A consumer that falls
// more than the ring behind is not cut off and misses no outcome: it gets
// the difference between what it last saw and the current membership
// (intermediate flaps are then coalesced), so memory stays bounded whatever
// the consumer does.

// EventKind is the kind of a membership Event.
type EventKind uint8

const (
	// EventJoined: the node became live (joined, or came back).
	EventJoined EventKind = iota + 1
	// EventUpdated: a live node's state moved (a key was set or deleted).
	EventUpdated
	// EventLeft: the node left gracefully (Server.Leave).
	EventLeft
	// EventDied: the failure detector found the node dead.
	EventDied
)

func (k EventKind) String() string {
	switch k {
	case EventJoined:
		return "Joined"
	case EventUpdated:
		return "Updated"
	case EventLeft:
		return "Left"
	case EventDied:
		return "Died"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is a change of membership.
type Event struct {
	Kind EventKind
	ID   NodeID
	// Node is a copy of the node's state when the event is delivered; nil
	// if the node was forgotten since.
	Node *NodeState
}

// eventRingSize bounds the events kept for consumers that lag.
const eventRingSize = 1024

// memberEvent is one entry of the ring.
type memberEvent struct {
	kind EventKind
	id   NodeID
}

// eventRing is the Engine's bounded log of membership events. It is
// allocated when a consumer first asks (Server.Events): until then nothing
// is recorded, and a first consumer starts from the current membership.
type eventRing struct {
	buf  []memberEvent // eventRingSize entries once enabled
	head uint64        // events ever recorded; the next one goes at head % size
}

func (r *eventRing) add(ev memberEvent) {
	if r.buf == nil {
		return
	}
	r.buf[r.head%eventRingSize] = ev
	r.head++
}

// recordEvents appends the difference between two publications of the
// live set (copies in ID order, self included; prevSelf is the self
// identity of prev, which a reincarnation may have replaced since).
//
// Nodes are matched by ID, as a consumer keys its view (Server.Events,
// and eventsSince's resync): a node whose state was removed between the
// two publications (a live node evicted by makeRoom) is Died, or Left if
// a state created again since has left, though its state is gone; one
// created again and live is the same member. Matched by state, the first
// had no event at all, and its consumer held it live for good (hostile
// review 13, TestHostile13EvictedLiveNodeLeavesTheEvents).
func (e *Engine) recordEvents(prev, cur []NodeState, prevSelf *NodeID) {
	if e.events.buf == nil {
		return
	}
	var gone []NodeID
	j := 0
	for i := range cur {
		c := &cur[i]
		for ; j < len(prev) && prev[j].id.Compare(*c.id) < 0; j++ {
			if prev[j].id != prevSelf {
				gone = append(gone, *prev[j].id)
			}
		}
		was := j < len(prev) && *prev[j].id == *c.id
		if *c.id == e.self {
			if was {
				j++
			}
			continue
		}
		switch {
		case !was || prev[j].id == prevSelf:
			e.events.add(memberEvent{EventJoined, *c.id})
		case prev[j].maxVersion != c.maxVersion:
			e.events.add(memberEvent{EventUpdated, *c.id})
		}
		if was {
			j++
		}
	}
	for ; j < len(prev); j++ {
		if prev[j].id != prevSelf {
			gone = append(gone, *prev[j].id)
		}
	}
	for _, id := range gone {
		kind := EventDied
		if ns, ok := e.lookup(id); ok && ns.left {
			kind = EventLeft
		}
		e.events.add(memberEvent{kind, id})
	}
}

// eventsSince returns the events after cursor, and the new cursor. On the
// first call (resync) or when cursor fell out of the ring, it returns
// instead the difference between view (what the consumer knows live, with
// the max versions it saw) and the current live peers.
func (e *Engine) eventsSince(cursor uint64, resync bool, view map[NodeID]uint64) ([]Event, uint64) {
	r := &e.events
	if r.buf == nil {
		r.buf = make([]memberEvent, eventRingSize)
	}
	if !resync && r.head-cursor <= eventRingSize {
		out := make([]Event, 0, r.head-cursor)
		for c := cursor; c < r.head; c++ {
			ev := r.buf[c%eventRingSize]
			out = append(out, e.event(ev.kind, ev.id))
		}
		return out, r.head
	}
	var out []Event
	live := map[NodeID]bool{}
	for _, ns := range e.states {
		if *ns.id == e.self || !ns.live || ns.left {
			continue
		}
		live[*ns.id] = true
		v, ok := view[*ns.id]
		switch {
		case !ok:
			out = append(out, e.event(EventJoined, *ns.id))
		case v != ns.maxVersion:
			out = append(out, e.event(EventUpdated, *ns.id))
		}
	}
	for _, id := range slices.SortedFunc(mapKeys(view), NodeID.Compare) {
		if live[id] {
			continue
		}
		kind := EventDied
		if ns, ok := e.lookup(id); ok && ns.left {
			kind = EventLeft
		}
		out = append(out, e.event(kind, id))
	}
	return out, r.head
}

func mapKeys(m map[NodeID]uint64) iter.Seq[NodeID] {
	return func(yield func(NodeID) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// event returns an Event with a copy of the node's current state.
func (e *Engine) event(kind EventKind, id NodeID) Event {
	ev := Event{Kind: kind, ID: id}
	if ns, ok := e.lookup(id); ok {
		ev.Node = ns.Clone()
	}
	return ev
}

// Events yields, in order, a Joined event for every live peer, then every
// change of membership: Joined, Updated (a live node's state moved), Left
// and Died, as the node learns of them (at the end of a gossip round, or at
// once for news pushed by peers), until ctx is done or the server stops.
// A live node whose state this node dropped (evicted to make room under
// Limits.MaxNodes) is Died.
// Events are not lost: a consumer that falls more than 1,024 events behind
// gets the difference between what it last saw and the current membership
// instead of the flaps in between, so nothing is queued without bound.
func (s *Server) Events(ctx context.Context) iter.Seq[Event] {
	return func(yield func(Event) bool) {
		view := map[NodeID]uint64{}
		var cursor uint64
		resync := true
		for {
			_, _, changed, closed := s.live.load()
			var batch []Event
			s.withEngine(func(e *Engine) { batch, cursor = e.eventsSince(cursor, resync, view) })
			resync = false
			for _, ev := range batch {
				switch ev.Kind {
				case EventJoined, EventUpdated:
					if ev.Node != nil {
						view[ev.ID] = ev.Node.maxVersion
					}
				default:
					delete(view, ev.ID)
				}
				if !yield(ev) {
					return
				}
			}
			if closed {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}
}
