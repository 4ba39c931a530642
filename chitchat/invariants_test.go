package chitchat

import (
	"fmt"
	"slices"
)

// checkInvariants verifies what must hold for an engine between any two
// calls. prev, if not nil, holds each node's monotonic pair from an earlier
// check (by slot) and is updated.
func checkInvariants(e *Engine, prev map[uint64][2]uint64) error {
	if err := checkAdvertisedCount(e); err != nil {
		return err
	}
	if !slices.IsSortedFunc(e.states, func(a, b *NodeState) int { return a.id.Compare(*b.id) }) {
		return fmt.Errorf("states not sorted")
	}
	if e.selfNS == nil || *e.selfNS.id != e.self || e.node(e.self) != e.selfNS {
		return fmt.Errorf("the cached self state is not the self node's")
	}
	if len(e.states) > e.limits.MaxNodes {
		return fmt.Errorf("%d states above MaxNodes %d", len(e.states), e.limits.MaxNodes)
	}
	if _, ok := e.lookup(e.self); !ok {
		return fmt.Errorf("self state missing")
	}
	for i, ns := range e.states {
		if i > 0 && *e.states[i-1].id == *ns.id {
			return fmt.Errorf("node %v twice", ns.id)
		}
		if e.node(*ns.id) != ns {
			return fmt.Errorf("node %v indexed to another state", ns.id)
		}
		if ns.maxVersion > maxSafeVersion || ns.lastGCVersion > maxSafeVersion {
			return fmt.Errorf("node %v: versions (%d, %d) above the safe bound", ns.id, ns.lastGCVersion, ns.maxVersion)
		}
		if err := checkKVStore(ns); err != nil {
			return fmt.Errorf("node %v: %w", ns.id, err)
		}
		for k, v := range ns.kvs.all() {
			if v.Version > ns.maxVersion {
				return fmt.Errorf("node %v: key %q at version %d above max version %d", ns.id, k, v.Version, ns.maxVersion)
			}
			if v.Status != StatusSet && v.Version <= ns.lastGCVersion && *ns.id == e.self {
				return fmt.Errorf("node %v: key %q of status %v at version %d, at or below the last GC version %d", ns.id, k, v.Status, v.Version, ns.lastGCVersion)
			}
			if v.Version == 0 {
				return fmt.Errorf("node %v: key %q at version 0", ns.id, k)
			}
		}
		var fp uint64
		for k, v := range ns.kvs.all() {
			if v.Status == StatusSet {
				fp ^= kvHash(k, v)
			}
		}
		if fp != ns.fp() {
			return fmt.Errorf("node %v: fingerprint %016x, its keys give %016x", ns.id, ns.fp(), fp)
		}
		if ns.kvs.len() > e.limits.MaxKeysPerNode {
			return fmt.Errorf("node %v: %d keys above MaxKeysPerNode", ns.id, ns.kvs.len())
		}
		if *ns.id != e.self && !ns.left {
			if ns.live != e.fd.IsLive(ns.slot) {
				return fmt.Errorf("node %v: mirrored live %v, detector says %v", ns.id, ns.live, e.fd.IsLive(ns.slot))
			}
			if _, dead := e.fd.TimeOfDeath(ns.slot); dead != ns.dead {
				return fmt.Errorf("node %v: mirrored dead %v, detector says %v", ns.id, ns.dead, dead)
			}
		}
		if prev != nil {
			if p, ok := prev[ns.slot]; ok && lessMonotonic(ns.monotonic(), p) && ns.forgotten == 0 {
				return fmt.Errorf("node %v: (last_gc_version, max_version) went from %v to %v", ns.id, p, ns.monotonic())
			}
			prev[ns.slot] = ns.monotonic()
		}
	}
	return nil
}

// checkAdvertisedCount verifies advertisedCount's cache: while it is valid,
// counting afresh at the time it was counted gives the same count, holding
// at least as long as the cache says.
func checkAdvertisedCount(e *Engine) error {
	c := e.adv
	if !c.valid {
		return nil
	}
	// Counted with advertised alone, at the end of the time the cache
	// holds for: the deadline it keeps is the detector's rule's.
	if c.bounded {
		n := 0
		for _, ns := range e.states {
			if e.advertised(ns, c.until) {
				n++
			}
		}
		if n != c.n {
			return fmt.Errorf("advertised count cached as %d until %v, %d counted afresh then", c.n, c.until, n)
		}
	}
	f := e.countAdvertised(c.from)
	if f.n != c.n {
		return fmt.Errorf("advertised count cached as %d at %v, %d counted afresh", c.n, c.from, f.n)
	}
	if f.bounded && (!c.bounded || c.until.After(f.until)) {
		return fmt.Errorf("advertised count %d cached until %v (bounded: %v), but it falls after %v", c.n, c.until, c.bounded, f.until)
	}
	return nil
}
