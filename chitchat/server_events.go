package chitchat

import "sync"

// eventQueue holds the key changes a subscription has not dispatched yet, at
// most limit of them. It grows with what is pending and shrinks back once
// drained: an idle subscription holds no buffer, where a channel of
// Config.EventBuffer (4,096) events held 700 KB for the life of the server.
type eventQueue struct {
	mu      sync.Mutex
	pending []KeyChange
	head    int // pending[head:] are queued
	limit   int
	ready   chan struct{} // holds a token while events are queued
}

// eventQueueKeep is the capacity a drained queue keeps for the next burst.
const eventQueueKeep = 64

func newEventQueue(limit int) *eventQueue {
	return &eventQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues ev, or reports false if limit events are already queued.
func (q *eventQueue) push(ev KeyChange) bool {
	q.mu.Lock()
	if len(q.pending)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.pending) == cap(q.pending) {
		// Slide the queued events down rather than grow.
		n := copy(q.pending, q.pending[q.head:])
		clear(q.pending[n:])
		q.pending, q.head = q.pending[:n], 0
	}
	q.pending = append(q.pending, ev)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // a token is there already
	}
	return true
}

// pop takes the oldest queued event.
func (q *eventQueue) pop() (KeyChange, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.pending) {
		if cap(q.pending) > eventQueueKeep {
			q.pending = nil // a burst does not pin its buffer
		} else {
			q.pending = q.pending[:0]
		}
		q.head = 0
		return KeyChange{}, false
	}
	ev := q.pending[q.head]
	q.pending[q.head] = KeyChange{}
	q.head++
	return ev, true
}
