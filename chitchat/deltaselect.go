package chitchat

import (
	"cmp"
	"slices"
	"time"
)

// candidate is a node with news for a peer, ranked for the delta.
type candidate struct {
	ns      *NodeState
	from    uint64
	unknown bool   // the peer knows nothing of it (from == 0)
	rank    uint64 // max version if unknown, number of stale entries if known
}

// computeDelta returns what the peer that sent digest lacks, within budget
// bytes of encoding (docs/PROTOCOL.md §4).
//
// Nodes the peer knows nothing of go first, smallest state first (small
// states, such as a metastore's, spread before bloated ones); then known
// nodes, most stale entries first. Ties are shuffled. Each node's entries go
// in version order, so a node cut short by the budget is still a valid
// prefix. Unlike upstream, a node whose next entry does not fit does not end
// the delta: smaller news of other nodes still fill the datagram, so one
// large value cannot starve everyone else (docs/PROTOCOL.md §14).
func (e *Engine) computeDelta(now time.Time, v *peerView, budget int) Delta {
	peer := v.digest
	cands := e.cands[:0]
	// at is the index in e.states of peer[j], the next entry of the
	// peer's digest that names a node we hold (len(e.states) when none
	// is left). Both lists are sorted by ID: entries are found by
	// galloping (seek), and a state is matched by its index, so the
	// states between two listed ones cost no ID comparison (a partial
	// digest lists a few dozen of thousands).
	j, at := 0, 0
	listedFrom := func(from int) {
		for ; j < len(peer); j++ {
			var held bool
			if from, held = e.seek(from, peer[j].ID); held {
				at = from
				return
			}
		}
		at = len(e.states)
	}
	listedFrom(0)
	for i, ns := range e.states {
		id := ns.id
		var known NodeDigest
		if i == at {
			known = peer[j].NodeDigest
			j++
			listedFrom(i + 1)
		} else if !v.unknown(ns) {
			if !v.mismatch(ns) || !e.fresh(ns) {
				continue // summarized or outside the coverage: not discussed
			}
			// A summary that differs from ours covers a node whose state
			// just moved here: the peer most likely lacks that burst.
			known.MaxVersion = ns.freshFrom
		}
		if ns.maxVersion <= known.MaxVersion || !e.advertised(ns, now) {
			continue
		}
		from := known.MaxVersion
		if known.LastGCVersion < ns.lastGCVersion && known.MaxVersion < ns.lastGCVersion {
			// The peer may have missed tombstones we already collected: it
			// must drop what it has of the node and start over.
			from = 0
			e.log.Info("node to reset", "node", id, "last_gc_version", ns.lastGCVersion, "peer_max_version", known.MaxVersion)
		}
		c := candidate{ns: ns, from: from, unknown: from == 0}
		if c.unknown {
			c.rank = ns.maxVersion
		} else {
			c.rank = uint64(ns.numStale(from))
		}
		cands = append(cands, c)
	}
	rankOrder := func(a, b candidate) int {
		if a.unknown != b.unknown {
			if a.unknown {
				return -1
			}
			return 1
		}
		if a.unknown {
			return cmp.Compare(a.rank, b.rank)
		}
		return cmp.Compare(b.rank, a.rank)
	}
	slices.SortStableFunc(cands, rankOrder)
	for i := 0; i < len(cands); {
		k := i + 1
		for k < len(cands) && rankOrder(cands[i], cands[k]) == 0 {
			k++
		}
		bucket := cands[i:k]
		e.rng.Shuffle(len(bucket), func(a, b int) { bucket[a], bucket[b] = bucket[b], bucket[a] })
		i = k
	}

	w := &e.dw
	w.reset(budget)
	const smallestNews = 14 + 6 // a node header and a key-value can't be smaller
	staleUsed := 0
	e.streams.truncated = false
	for i, c := range cands {
		if !w.fits(smallestNews) {
			e.streams.truncated = i < len(cands)
			break
		}
		ns := c.ns
		hdr := sizeNodeOp(*ns.id, ns.lastGCVersion, c.from)
		e.stale = ns.appendStaleKeyValues(e.stale[:0], c.from)
		stale := e.stale
		staleUsed = max(staleUsed, len(stale))
		if len(stale) == 0 {
			// Only collected tombstones are newer: tell the peer the version.
			if w.fits(hdr + sizeMaxOp(ns.maxVersion)) {
				w.addNode(*ns.id, ns.lastGCVersion, c.from)
				w.addMax(ns.maxVersion)
			} else {
				e.streams.truncated = true
			}
			continue
		}
		if !w.fits(hdr + sizeKVOp(stale[0].Key, stale[0].Value, stale[0].Version)) {
			e.streams.truncated = true
			continue
		}
		w.addNode(*ns.id, ns.lastGCVersion, c.from)
		for _, kv := range stale {
			if !w.fits(sizeKVOp(kv.Key, kv.Value, kv.Version)) {
				e.streams.truncated = true
				break
			}
			w.addKV(kv)
		}
	}
	// Keep the scratch buffers, not what they point to.
	clear(e.stale[:staleUsed])
	clear(cands)
	e.cands = cands[:0]
	return w.finish()
}
