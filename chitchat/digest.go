package chitchat

import (
	"slices"
	"sort"
)

// NodeDigest is what a digest says about one node: enough for the receiver
// to know which versions the sender lacks.
type NodeDigest struct {
	Heartbeat     uint64
	LastGCVersion uint64
	MaxVersion    uint64
}

// DigestEntry is one node of a digest.
type DigestEntry struct {
	ID NodeID
	NodeDigest
}

// Digest lists nodes explicitly, sorted by ID with no duplicates. A Syn or
// SynAck with no Coverage carries the sender's whole view (every node it
// advertises), as upstream; with a Coverage, the explicit entries are the
// spot entries and the fully explicit buckets of a partial digest
// (docs/design/scale.md §2).
type Digest []DigestEntry

func compareEntries(a, b DigestEntry) int { return a.ID.Compare(b.ID) }

// Get returns the entry for id.
func (d Digest) Get(id NodeID) (NodeDigest, bool) {
	i, ok := slices.BinarySearchFunc(d, id, func(e DigestEntry, id NodeID) int { return e.ID.Compare(id) })
	if !ok {
		return NodeDigest{}, false
	}
	return d[i].NodeDigest, true
}

// normalize returns d sorted by ID without duplicates, keeping the last
// occurrence (a digest is a map on the wire: the last entry for an id wins).
// A digest already in order is returned as is; otherwise a sorted copy, so
// that a caller's message is never reordered under it.
func (d Digest) normalize() Digest {
	sorted := true
	for i := 1; i < len(d); i++ {
		if compareEntries(d[i-1], d[i]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return d
	}
	d = slices.Clone(d)
	sort.SliceStable(d, func(i, j int) bool { return compareEntries(d[i], d[j]) < 0 })
	out := d[:0]
	for i, e := range d {
		if i+1 < len(d) && d[i+1].ID == e.ID {
			continue // a later entry for the same id wins
		}
		out = append(out, e)
	}
	return out
}
