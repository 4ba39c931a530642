package chitchat

import (
	"slices"
	"strings"
)

// KeyChange describes a key written to some node's state, as seen locally.
type KeyChange struct {
	// Key is the key with the subscription prefix stripped.
	Key string
	// Value is the new value.
	Value string
	// Node owns the key.
	Node NodeID
}

// listeners is the registry of key-prefix subscriptions shared by every
// NodeState of one Engine. Deletions are never notified, as upstream.
type listeners struct {
	nextID uint64
	// byPrefix maps a prefix to its callbacks by subscription id.
	byPrefix map[string]map[uint64]func(KeyChange)
	// prefixes is the sorted list of keys of byPrefix. "" sorts first, so
	// listeners on the empty prefix are called first, then the others in
	// lexicographic order of their prefix.
	prefixes []string
}

func newListeners() *listeners {
	return &listeners{byPrefix: make(map[string]map[uint64]func(KeyChange))}
}

// subscribe registers fn for every key starting with prefix (bytewise; the
// empty prefix matches every key). It returns a function that unsubscribes;
// calling it more than once is harmless.
func (l *listeners) subscribe(prefix string, fn func(KeyChange)) (cancel func()) {
	l.nextID++
	id := l.nextID
	subs, ok := l.byPrefix[prefix]
	if !ok {
		subs = make(map[uint64]func(KeyChange))
		l.byPrefix[prefix] = subs
		i, _ := slices.BinarySearch(l.prefixes, prefix)
		// Copy on write: a fire in progress keeps iterating its own slice.
		l.prefixes = slices.Insert(slices.Clip(l.prefixes), i, prefix)
	}
	subs[id] = fn
	return func() {
		subs, ok := l.byPrefix[prefix]
		if !ok {
			return
		}
		delete(subs, id)
		if len(subs) == 0 {
			delete(l.byPrefix, prefix)
			if i, found := slices.BinarySearch(l.prefixes, prefix); found {
				// Copy on write: deleting in place would shift the slice a
				// fire in progress is iterating, skipping or repeating a
				// prefix when a callback unsubscribes.
				l.prefixes = slices.Delete(slices.Clone(l.prefixes), i, i+1)
			}
		}
	}
}

// fire calls every listener whose prefix starts key. Matching is on bytes, so
// keys starting with a multi-byte UTF-8 character are fine (upstream panics
// on them: docs/PROTOCOL.md §14).
func (l *listeners) fire(key, value string, node NodeID) {
	if l == nil || len(l.prefixes) == 0 {
		return
	}
	for _, p := range l.prefixes {
		if p > key {
			// Every remaining prefix sorts after key, and a prefix of key
			// never sorts after it.
			break
		}
		if !strings.HasPrefix(key, p) {
			continue
		}
		subs := l.byPrefix[p]
		// Callbacks may unsubscribe; iterate over a sorted copy of the ids so
		// that the call order is deterministic.
		ids := make([]uint64, 0, len(subs))
		for id := range subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		ev := KeyChange{Key: key[len(p):], Value: value, Node: node}
		for _, id := range ids {
			if fn, ok := subs[id]; ok {
				fn(ev)
			}
		}
	}
}

func (l *listeners) len() int {
	n := 0
	for _, subs := range l.byPrefix {
		n += len(subs)
	}
	return n
}
