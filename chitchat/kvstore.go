package chitchat

import (
	"fmt"
	"iter"
	"maps"
	"slices"
)

// kvStore holds one node's key-value entries (NodeState.kvs).
//
// Most nodes hold a handful of keys, and this is paid once per node per
// observer (issue 13): Go's smallest map (one swiss-table group of 8 slots
// of 72 bytes, plus its header) costs 600-700 bytes even for one key, where
// a slice of entries costs 80. So entries are a slice in no particular
// order (appended, and removed by moving the last entry into the hole),
// searched linearly while there are at most kvIndexMin of them; above
// that, index maps each key to its position, keeping lookups O(1) for
// nodes with thousands of keys.
//
// No caller depends on the order of entries (it was a map's before): the
// readers that need one sort (NodeState.iter by key,
// appendStaleKeyValues and liveEntriesByVersion by version).
//
// A store is written only by the NodeState that owns it, and only while
// not shared with copies (NodeState.ownKVs clones it first). Methods that
// read accept a nil store: a node without keys has none.
type kvStore struct {
	entries []kvEntry
	// index maps every key of entries to its position; nil while the
	// store is small (see kvIndexMin).
	index map[string]int32
	// fp is the fingerprint of the entries (NodeState.fp), kept by
	// NodeState's put, removeAt and clearKVs; here and not in nodeLocal,
	// so that a node without keys pays nothing for it.
	fp uint64
}

type kvEntry struct {
	key string
	v   VersionedValue
}

const (
	// kvIndexMin is the number of entries above which a store builds its
	// index: a linear search of 8 short keys costs about what a map
	// lookup does (BenchmarkApplyManyKeys, BenchmarkHandshake).
	kvIndexMin = 8
	// kvIndexDrop is the number of entries at or below which a store that
	// shrank drops its index (below kvIndexMin, so that a store going back
	// and forth around kvIndexMin keys does not rebuild it each time).
	kvIndexDrop = kvIndexMin / 2
)

// len returns the number of entries, tombstones included.
func (s *kvStore) len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// find returns the position of key, or -1.
func (s *kvStore) find(key string) int {
	if s == nil {
		return -1
	}
	if s.index != nil {
		if i, ok := s.index[key]; ok {
			return int(i)
		}
		return -1
	}
	for i := range s.entries {
		if s.entries[i].key == key {
			return i
		}
	}
	return -1
}

// get returns the entry of key.
func (s *kvStore) get(key string) (VersionedValue, bool) {
	if i := s.find(key); i >= 0 {
		return s.entries[i].v, true
	}
	return VersionedValue{}, false
}

// all yields every entry, in no particular order. The store must not be
// written while this runs (removeWhere removes while iterating).
func (s *kvStore) all() iter.Seq2[string, VersionedValue] {
	return func(yield func(string, VersionedValue) bool) {
		if s == nil {
			return
		}
		for i := range s.entries {
			if !yield(s.entries[i].key, s.entries[i].v) {
				return
			}
		}
	}
}

// clone returns a copy that shares nothing writable with s (keys and
// values are immutable strings).
func (s *kvStore) clone() *kvStore {
	c := &kvStore{entries: slices.Clone(s.entries), fp: s.fp}
	if s.index != nil {
		c.index = maps.Clone(s.index)
	}
	return c
}

// set writes the entry at position i, or appends it when i is -1.
func (s *kvStore) set(i int, key string, v VersionedValue) {
	if i >= 0 {
		s.entries[i].v = v
		return
	}
	s.entries = append(s.entries, kvEntry{key, v})
	switch {
	case s.index != nil:
		s.index[key] = int32(len(s.entries) - 1)
	case len(s.entries) > kvIndexMin:
		s.index = make(map[string]int32, len(s.entries))
		for j := range s.entries {
			s.index[s.entries[j].key] = int32(j)
		}
	}
}

// removeAt removes the entry at position i: the last entry takes its
// place.
func (s *kvStore) removeAt(i int) {
	last := len(s.entries) - 1
	key := s.entries[i].key
	if i != last {
		s.entries[i] = s.entries[last]
		if s.index != nil {
			s.index[s.entries[i].key] = int32(i)
		}
	}
	s.entries[last] = kvEntry{} // no longer holds the strings
	s.entries = s.entries[:last]
	switch {
	case len(s.entries) <= kvIndexDrop:
		s.index = nil
	case s.index != nil:
		delete(s.index, key)
	}
}

// String renders the entries as a map (for logs and test failures).
func (s *kvStore) String() string {
	return fmt.Sprint(maps.Collect(s.all()))
}
