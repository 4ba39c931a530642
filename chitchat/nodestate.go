package chitchat

import (
	"crypto/sha256"
	"encoding/binary"
	"iter"
	"slices"
	"strings"
	"time"
)

// NodeState is one node's versioned key-value map, as known locally.
//
// Every mutation on the owner takes version MaxVersion+1, so versions are
// unique within a node and the first one is 1 (0 means "nothing known").
//
// Invariants:
//   - the store holds every non-deleted key of the owner's state at MaxVersion,
//     and every tombstone with a version in (LastGCVersion, MaxVersion];
//   - MaxVersion is at least every entry's version; it can be larger (the
//     newest versions were tombstones since collected, or a delta said so);
//   - LastGCVersion can exceed MaxVersion after a reset that delivered only
//     part of the state;
//   - (LastGCVersion, MaxVersion), compared lexicographically, never
//     decreases (see monotonic).
//
// NodeStates handed out by Engine and Server accessors are copies that
// share nothing mutable (the identity they point to never changes, and the
// key store is copied before the engine writes to it): reading them is
// safe from any goroutine, and they never change.
type NodeState struct {
	// The fields here are what the exported methods read, and all that a
	// copy holds (48 bytes): every copy the live-nodes watch holds, one
	// per live node, is paid once per node per observer (issue 13). The
	// identity never changes: copies share it with the state they were
	// made from (nodeAlloc.ident), 8 bytes where it took 56.
	id            *NodeID
	heartbeat     uint64
	maxVersion    uint64
	lastGCVersion uint64
	// kvs is nil while the node has no key (kvstore.go). It is shared,
	// read-only, with copies (Clone) while kvsShared is set: put, remove
	// and clearKVs replace a shared store instead of writing to it.
	kvs *kvStore
	// nodeLocal is the Engine's bookkeeping about the node, allocated with
	// it (newNodeState); nil on copies, whose only readers are the
	// exported methods.
	*nodeLocal
}

// nodeLocal is the part of a NodeState that only its Engine reads.
type nodeLocal struct {
	// Fields are ordered to pack: 8-byte words first, then the 4-byte
	// counters, then the flags (issue 13: every byte here is paid once per
	// node per observer).

	// slot keys the node in the failure detector (fdslots.go); live and
	// dead mirror the detector's verdict (see Engine.UpdateLiveness).
	slot uint64
	// ref is the node's position on the ring (nodeRef); sum caches its
	// state hash, valid while sumStamp matches its inputs (stateHash).
	ref      uint64
	sum      uint64
	sumStamp uint64
	// freshFrom is the node's max version before its recent changes
	// (Engine.noteChange).
	freshFrom uint64
	// aside holds one of two values that never coexist (8 bytes paid once
	// per node per observer, not twice):
	//   - while left: when the node was found left (leftTime), in
	//     nanoseconds since the Unix epoch, 8 bytes instead of a
	//     time.Time's 24. It only measures the dead-node grace period
	//     (hours), for which the wall clock is good enough;
	//   - otherwise: the highest heartbeat named by a death notice we
	//     applied or keep about the node's current suspicion or death
	//     (deathHeartbeat), 0 if none. A left node is out of the failure
	//     detector's hands, so it needs none.
	aside uint64

	// mark == Engine.markGen when the node is listed explicitly in the
	// message being built or checked.
	mark uint32
	// freshUntil is the last round in which the node is fresh (its state
	// moved recently; Engine.noteChange).
	freshUntil uint32
	// forgotten counts the times our view of the node's keys was emptied
	// (Engine.forgetView): the only way its versions go back.
	forgotten uint32

	live bool
	// dead: the detector found the node dead; its time of death is the
	// detector's (Engine.goneAt).
	dead     bool
	everLive bool // seen live at least once: protected from eviction
	// evidenced is set once the node showed evidence of life (a heartbeat
	// rise, direct contact, an alive notice); only then is it advertised in
	// our digests and deltas.
	evidenced bool
	// heard: we had direct contact with the node (a message from its own
	// address carrying its own entry, or an authenticated notice); makeRoom
	// evicts nodes never heard from to admit one in direct contact.
	heard bool
	// wanted: a peer's digest showed a newer state of this node; our next
	// Syns list it explicitly so that a peer sends the delta.
	wanted bool
	// suspect: live, but its phi is above half the threshold; our Syns list
	// it explicitly so that whoever has a fresher heartbeat answers with it.
	suspect bool
	// deadNoticed: a death notice about this death was sent or applied.
	deadNoticed bool
	// deathHeard: a death notice came while our own suspicion was below
	// half the threshold, and no heartbeat rose (or restarted from a
	// reset's 0) since: the node dies here once our suspicion reaches it
	// (judge), not only at our own verdict.
	deathHeard bool
	// left is set once the node's LeftKey is known; from then on the
	// failure detector no longer judges it and it is collected at
	// leftTime plus the dead-node grace period.
	left bool
	// kvsShared: kvs is shared with a copy (see kvs).
	kvsShared bool
	// pastRises counts the hearsay rises up to the death heartbeat
	// (deathHeartbeat) taken as the node's past since it was noted
	// (Engine.observeHeartbeat); it fits the padding after the flags.
	pastRises uint8
}

// nodeAlloc puts a NodeState, its identity and its nodeLocal in one
// allocation (176 bytes): one object for the allocator and the collector,
// and the parts next to each other in memory.
type nodeAlloc struct {
	ident NodeID
	NodeState
	local nodeLocal
}

func newNodeState(id NodeID) *NodeState {
	a := &nodeAlloc{ident: id, local: nodeLocal{ref: nodeRef(id)}}
	a.id, a.nodeLocal = &a.ident, &a.local
	return &a.NodeState
}

// ID returns the node's identity.
func (ns *NodeState) ID() NodeID { return *ns.id }

// Heartbeat returns the last heartbeat known for the node.
func (ns *NodeState) Heartbeat() uint64 { return ns.heartbeat }

// MaxVersion returns the version up to which this state is complete.
func (ns *NodeState) MaxVersion() uint64 { return ns.maxVersion }

// LastGCVersion returns the highest version of a tombstone removed from this
// state by garbage collection (or received through a reset).
func (ns *NodeState) LastGCVersion() uint64 { return ns.lastGCVersion }

// Get returns the value of key. Tombstones are absent; keys scheduled with
// DeleteAfterTTL are still present until collected.
func (ns *NodeState) Get(key string) (string, bool) {
	v, ok := ns.kvs.get(key)
	if !ok || v.IsDeleted() {
		return "", false
	}
	return v.Value, true
}

// GetVersioned returns the raw entry of key, tombstones included.
func (ns *NodeState) GetVersioned(key string) (VersionedValue, bool) {
	return ns.kvs.get(key)
}

// ContainsKey reports whether Get would find key.
func (ns *NodeState) ContainsKey(key string) bool {
	_, ok := ns.Get(key)
	return ok
}

// NumKeyValues returns the number of keys that are not tombstones.
func (ns *NodeState) NumKeyValues() int {
	n := 0
	for _, v := range ns.kvs.all() {
		if !v.IsDeleted() {
			n++
		}
	}
	return n
}

// KeyValues yields the non-deleted entries in key order.
func (ns *NodeState) KeyValues() iter.Seq2[string, VersionedValue] {
	return ns.iter("", false)
}

// AllKeyValues yields every entry, tombstones included, in key order.
func (ns *NodeState) AllKeyValues() iter.Seq2[string, VersionedValue] {
	return ns.iter("", true)
}

// Prefix yields the non-deleted entries whose key starts with prefix, in key
// order.
func (ns *NodeState) Prefix(prefix string) iter.Seq2[string, VersionedValue] {
	return ns.iter(prefix, false)
}

func (ns *NodeState) iter(prefix string, deleted bool) iter.Seq2[string, VersionedValue] {
	return func(yield func(string, VersionedValue) bool) {
		s := ns.kvs // unchanged meanwhile: a copy, or the engine's state under its lock
		if s == nil {
			return
		}
		pos := make([]int32, 0, len(s.entries))
		for i, e := range s.entries {
			if strings.HasPrefix(e.key, prefix) && (deleted || !e.v.IsDeleted()) {
				pos = append(pos, int32(i))
			}
		}
		slices.SortFunc(pos, func(a, b int32) int { return strings.Compare(s.entries[a].key, s.entries[b].key) })
		for _, i := range pos {
			if !yield(s.entries[i].key, s.entries[i].v) {
				return
			}
		}
	}
}

// monotonic returns (LastGCVersion, MaxVersion): it never decreases.
func (ns *NodeState) monotonic() [2]uint64 { return [2]uint64{ns.lastGCVersion, ns.maxVersion} }

func lessMonotonic(a, b [2]uint64) bool {
	return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
}

// Clone returns a deep copy detached from its Engine: the fields the
// exported methods read, without the Engine's bookkeeping (nodeLocal). The
// copy shares the key-value store, which neither side writes to from then
// on (the owner replaces it at its next write: see kvs).
func (ns *NodeState) Clone() *NodeState {
	c := ns.copyOf()
	return &c
}

// copyOf returns a copy of ns, as Clone, by value.
func (ns *NodeState) copyOf() NodeState {
	if ns.nodeLocal != nil && ns.kvs != nil {
		ns.kvsShared = true // a copy never writes: it needs no flag
	}
	c := *ns
	c.nodeLocal = nil
	return c
}

// ownKVs makes kvs a store this state may write to. A clone keeps the
// positions of the entries.
func (ns *NodeState) ownKVs() {
	switch {
	case ns.kvs == nil:
		ns.kvs = &kvStore{entries: make([]kvEntry, 0, 1)}
	case ns.kvsShared:
		ns.kvs = ns.kvs.clone()
	}
	ns.kvsShared = false
}

// digest returns the node's digest entry as known locally.
func (ns *NodeState) digest() NodeDigest {
	return NodeDigest{Heartbeat: ns.heartbeat, LastGCVersion: ns.lastGCVersion, MaxVersion: ns.maxVersion}
}

// incHeartbeat increments the heartbeat of the self node.
func (ns *NodeState) incHeartbeat() {
	if ns.heartbeat == ^uint64(0) {
		panic("chitchat: invariant violated: heartbeat overflow")
	}
	ns.heartbeat++
}

// trySetHeartbeat records a heartbeat observed for another node and reports
// whether it is an update worth feeding to the failure detector: the first
// heartbeat ever seen is not (it only sets the baseline), a heartbeat that is
// not strictly greater is not.
func (ns *NodeState) trySetHeartbeat(h uint64) bool {
	if ns.heartbeat == 0 {
		// A baseline after a reset: whether it is past a kept death
		// notice's heartbeat is unknown, so the notice goes (our own
		// detector still judges).
		ns.heartbeat = h
		ns.deathHeard = false
		return false
	}
	if h > ns.heartbeat {
		// A kept death notice is voided by the caller when it takes the
		// rise for life (Engine.observeHeartbeat), not by every rise.
		ns.heartbeat = h
		return true
	}
	return false
}

// leftTime returns when the node was found left; meaningful while left.
func (ns *NodeState) leftTime() time.Time { return time.Unix(0, int64(ns.aside)) }

// setLeft records that the node was found left at now, or (zero now) that
// it is no longer left.
func (ns *NodeState) setLeft(left bool, now time.Time) {
	ns.left = left
	ns.aside, ns.pastRises = 0, 0
	if left {
		ns.aside = uint64(now.UnixNano())
	}
}

// deathHeartbeat returns the highest heartbeat a death notice named about
// the node's current suspicion or death (0: none). A hearsay rise up to it
// is the dead node's past still circulating, not life
// (Engine.observeHeartbeat).
func (ns *NodeState) deathHeartbeat() uint64 {
	if ns.left {
		return 0
	}
	return ns.aside
}

// noteDeathHeartbeat raises the death heartbeat to h; clearDeathHeartbeat
// drops it once the node shows life past it. A notice noted again does not
// reset pastRises: repeated notices must not mute the node's rises for
// longer than one does.
func (ns *NodeState) noteDeathHeartbeat(h uint64) {
	if !ns.left {
		ns.aside = max(ns.aside, h)
	}
}

func (ns *NodeState) clearDeathHeartbeat() {
	if !ns.left {
		ns.aside, ns.pastRises = 0, 0
	}
}

// set writes key=value with a new version, unless the key already holds that
// value with status Set. It reports whether it wrote.
func (ns *NodeState) set(key, value string) bool {
	if v, ok := ns.kvs.get(key); ok && v.Status == StatusSet && v.Value == value {
		return false
	}
	return ns.setVersioned(key, VersionedValue{Value: value, Version: ns.maxVersion + 1, Status: StatusSet})
}

// setWithTTL writes key=value with status DeleteAfterTTL: readable until
// collected. Setting the same value again does not refresh the TTL. It
// reports whether it wrote.
func (ns *NodeState) setWithTTL(now time.Time, key, value string) bool {
	if v, ok := ns.kvs.get(key); ok && v.Status == StatusDeleteAfterTTL && v.Value == value {
		return false
	}
	return ns.setVersioned(key, VersionedValue{Value: value, Version: ns.maxVersion + 1, Status: StatusDeleteAfterTTL, MarkedAt: now})
}

// delete turns key into a tombstone (value cleared). It reports false if the
// key does not exist. Listeners are not called.
func (ns *NodeState) delete(now time.Time, key string) bool {
	if ns.kvs.find(key) < 0 {
		return false
	}
	ns.maxVersion++
	ns.put(key, VersionedValue{Version: ns.maxVersion, Status: StatusDeleted, MarkedAt: now})
	return true
}

// deleteAfterTTL schedules key for deletion, keeping its value readable until
// collected. It reports false if the key does not exist. Listeners are not
// called. As upstream, on a tombstone this makes the key visible again with
// an empty value (docs/PROTOCOL.md §2.2).
func (ns *NodeState) deleteAfterTTL(now time.Time, key string) bool {
	v, ok := ns.kvs.get(key)
	if !ok {
		return false
	}
	ns.maxVersion++
	ns.put(key, VersionedValue{Value: v.Value, Version: ns.maxVersion, Status: StatusDeleteAfterTTL, MarkedAt: now})
	return true
}

// setVersioned is the single entry point for writes that carry their own
// version (local sets, deltas, resets). MaxVersion is raised first, even when
// the write itself is stale and ignored. It reports whether it wrote: the
// caller fires the Engine's listeners for every write that is not a
// tombstone (a NodeState does not hold the registry: 8 bytes per node).
func (ns *NodeState) setVersioned(key string, v VersionedValue) bool {
	ns.maxVersion = max(ns.maxVersion, v.Version)
	if old, ok := ns.kvs.get(key); ok && old.Version >= v.Version {
		return false
	}
	ns.put(key, v)
	return true
}

// setVersionedFiring is setVersioned for writes that come from elsewhere
// (deltas, resets): it fires l if the write applied and is not a tombstone.
func (ns *NodeState) setVersionedFiring(key string, v VersionedValue, l *listeners) {
	if ns.setVersioned(key, v) && v.Status != StatusDeleted {
		l.fire(key, v.Value, *ns.id)
	}
}

// put writes key's entry, keeping the fingerprint.
func (ns *NodeState) put(key string, v VersionedValue) {
	// The store first: the fingerprint lives in it, and a store shared
	// with a copy must not change (TestKVStoreCopyKeepsItsFingerprint).
	ns.ownKVs()
	i := ns.kvs.find(key)
	if i >= 0 {
		ns.kvs.fp ^= fpShare(key, ns.kvs.entries[i].v)
	}
	ns.kvs.fp ^= fpShare(key, v)
	ns.kvs.set(i, key, v)
}

// remove deletes key, keeping the fingerprint.
func (ns *NodeState) remove(key string) {
	if i := ns.kvs.find(key); i >= 0 {
		ns.removeAt(i)
	}
}

// removeAt deletes the entry at position i of kvs, keeping the
// fingerprint. The last entry takes position i (kvStore.removeAt).
func (ns *NodeState) removeAt(i int) {
	ns.ownKVs() // a clone keeps position i
	e := &ns.kvs.entries[i]
	ns.kvs.fp ^= fpShare(e.key, e.v)
	ns.kvs.removeAt(i)
	if len(ns.kvs.entries) == 0 {
		ns.kvs = nil
	}
}

// removeWhere deletes every entry for which drop is true, keeping the
// fingerprint. drop must not change kvs.
func (ns *NodeState) removeWhere(drop func(key string, v VersionedValue) bool) {
	// Backwards: removeAt moves the last entry, already seen, into the
	// hole. kvs is read afresh at each step: the first removal may replace
	// a shared store by a clone, and the last one leaves nil.
	for i := ns.kvs.len() - 1; i >= 0; i-- {
		if e := ns.kvs.entries[i]; drop(e.key, e.v) {
			ns.removeAt(i)
		}
	}
}

// clearKVs empties kvs.
func (ns *NodeState) clearKVs() {
	ns.kvs, ns.kvsShared = nil, false
}

// fp is the fingerprint of the node's keys: the XOR of fpShare over its
// entries of status Set (0 without keys). Every change to kvs goes through
// put, remove or clearKVs, which keep it.
func (ns *NodeState) fp() uint64 {
	if ns.kvs == nil {
		return 0
	}
	return ns.kvs.fp
}

// fpShare is an entry's share of the fingerprint: only entries of status
// Set have one. Tombstones and TTL'd entries are collected on each node's
// own clock, so at the same max version two honest views can differ in
// them, never in their Set entries (a Set entry is only ever replaced by a
// later version, which a view at that max version holds too).
func fpShare(key string, v VersionedValue) uint64 {
	if v.Status != StatusSet {
		return 0
	}
	return kvHash(key, v)
}

// kvHash is an entry's share of a fingerprint: the first 8 bytes of
// SHA-256 over the key's length (uvarint) and bytes, the version (8 bytes,
// big-endian), the status (1 byte) and the value. The time an entry was
// marked is local and left out.
func kvHash(key string, v VersionedValue) uint64 {
	var buf [256]byte // most entries hash without an allocation
	b := binary.AppendUvarint(buf[:0], uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, v.Version)
	b = append(b, byte(v.Status))
	b = append(b, v.Value...)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// gcKeys removes tombstones and DeleteAfterTTL entries marked at least grace
// ago and raises LastGCVersion to the highest version removed.
func (ns *NodeState) gcKeys(now time.Time, grace time.Duration) {
	gc := ns.lastGCVersion
	ns.removeWhere(func(_ string, v VersionedValue) bool {
		if v.Status == StatusSet || now.Before(v.MarkedAt.Add(grace)) {
			return false
		}
		gc = max(gc, v.Version)
		return true
	})
	ns.lastGCVersion = gc
}

// appendStaleKeyValues appends to out (a scratch buffer of the caller's, so
// that a delta does not allocate per node) the entries (tombstones included)
// with a version above floor, in increasing version order: the order a delta
// must carry them in, so that any prefix of it is a valid partial update.
func (ns *NodeState) appendStaleKeyValues(out []KeyValueMutation, floor uint64) []KeyValueMutation {
	start := len(out)
	if ns.kvs != nil {
		for _, e := range ns.kvs.entries {
			if e.v.Version > floor {
				out = append(out, KeyValueMutation{Key: e.key, Value: e.v.Value, Version: e.v.Version, Status: e.v.Status})
			}
		}
	}
	slices.SortFunc(out[start:], func(a, b KeyValueMutation) int {
		switch {
		case a.Version < b.Version:
			return -1
		case a.Version > b.Version:
			return 1
		}
		return 0
	})
	return out
}

// numStale counts the entries (tombstones included) with a version above
// floor.
func (ns *NodeState) numStale(floor uint64) int {
	n := 0
	if ns.kvs != nil {
		for i := range ns.kvs.entries {
			if ns.kvs.entries[i].v.Version > floor {
				n++
			}
		}
	}
	return n
}
