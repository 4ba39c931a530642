package chitchat

import "container/list"

// gcHistorySize is how many garbage-collected nodes are remembered
// (upstream's GARBAGE_COLLECTED_NODE_HISTORY_SIZE).
const gcHistorySize = 500

// gcHistory remembers the last heartbeat of recently garbage-collected
// nodes, so that peers still gossiping an old dead node cannot resurrect it:
// the node comes back only with a strictly greater heartbeat. It is an LRU:
// with more churn than its capacity, the oldest entries are forgotten.
type gcHistory struct {
	cap   int
	order *list.List // of *gcEntry, most recent first
	byID  map[NodeID]*list.Element
}

type gcEntry struct {
	id        NodeID
	heartbeat uint64
}

func newGCHistory(capacity int) *gcHistory {
	return &gcHistory{cap: capacity, order: list.New(), byID: make(map[NodeID]*list.Element)}
}

// peek returns the remembered heartbeat without refreshing the entry.
func (h *gcHistory) peek(id NodeID) (uint64, bool) {
	if e, ok := h.byID[id]; ok {
		return e.Value.(*gcEntry).heartbeat, true
	}
	return 0, false
}

// put remembers id as most recent, evicting the least recent if full.
func (h *gcHistory) put(id NodeID, heartbeat uint64) {
	if e, ok := h.byID[id]; ok {
		e.Value.(*gcEntry).heartbeat = heartbeat
		h.order.MoveToFront(e)
		return
	}
	h.byID[id] = h.order.PushFront(&gcEntry{id: id, heartbeat: heartbeat})
	if h.order.Len() > h.cap {
		last := h.order.Back()
		h.order.Remove(last)
		delete(h.byID, last.Value.(*gcEntry).id)
	}
}

// pop forgets id.
func (h *gcHistory) pop(id NodeID) {
	if e, ok := h.byID[id]; ok {
		h.order.Remove(e)
		delete(h.byID, id)
	}
}

func (h *gcHistory) len() int { return h.order.Len() }
