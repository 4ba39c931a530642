package chitchat

import (
	"fmt"
	"time"
)

// KeyValueMutation is one entry of a node delta.
type KeyValueMutation struct {
	Key     string
	Value   string
	Version uint64
	Status  Status
}

// NodeDelta carries the part of one node's state that a peer is missing.
//
// Applied to a state whose MaxVersion is at least FromVersionExcluded, its
// KeyValues bring that state up to MaxVersion. FromVersionExcluded == 0 with a
// LastGCVersion the receiver cannot reconcile means "reset": the receiver
// drops what it has of the node and rebuilds from this delta.
type NodeDelta struct {
	// ID is the node; zero when the delta names it by Ref.
	ID NodeID
	// Ref, set instead of ID by a node op by reference (pushes, whose node
	// every receiver that can apply them holds: a 64-bit SHA-256 ref is 8
	// bytes where a NodeID is 20 to 40), is resolved by the receiver
	// against the nodes it holds; a delta about a node it does not hold is
	// skipped (docs/PROTOCOL.md §11.10).
	Ref uint64
	// LastGCVersion is the sender's LastGCVersion for the node: no entry with
	// a larger version was garbage collected from the state the delta was
	// computed from.
	LastGCVersion uint64
	// FromVersionExcluded is the receiver-side version the delta starts
	// after: every record of the sender's state in (From, MaxVersion] is here,
	// except overwritten versions and collected tombstones.
	FromVersionExcluded uint64
	// KeyValues are in strictly increasing version order on the wire.
	KeyValues []KeyValueMutation
	// MaxVersion is the version of the last key-value, or, when there is
	// none, an explicit value (0 = nothing).
	MaxVersion uint64
}

// Delta is the list of node deltas of a SynAck or an Ack. Each node appears at
// most once.
type Delta struct {
	Nodes []NodeDelta
	// enc caches the wire encoding produced by the budgeted writer, so the
	// delta is not encoded twice. nil for deltas built by hand or decoded.
	enc []byte
}

// deltaStatus is the verdict on a node delta, computed before applying it.
type deltaStatus uint8

const (
	deltaReject deltaStatus = iota
	deltaApply
	deltaApplyAfterReset
)

func (s deltaStatus) String() string {
	switch s {
	case deltaReject:
		return "reject"
	case deltaApply:
		return "apply"
	case deltaApplyAfterReset:
		return "apply-after-reset"
	}
	return fmt.Sprintf("deltaStatus(%d)", uint8(s))
}

// wellFormed checks what the wire decoder guarantees, for node deltas built
// by other means (versions are positive and none exceeds MaxVersion), and
// that versions stay far from overflowing.
func (d *NodeDelta) wellFormed() bool {
	if d.MaxVersion > maxSafeVersion || d.LastGCVersion > maxSafeVersion || d.FromVersionExcluded > maxSafeVersion {
		return false
	}
	for _, kv := range d.KeyValues {
		if kv.Version == 0 || kv.Version > d.MaxVersion || !kv.Status.valid() {
			return false
		}
	}
	return true
}

// classify decides what to do with a node delta (docs/PROTOCOL.md §5.1).
//
// The compatibility test is the negation of the sender's reset rule applied
// to our digest: the sender resets us iff its LastGCVersion is above both our
// LastGCVersion and our MaxVersion. The second comparison is "≤", not "<"
// (upstream fixes #176/#180): with "<" a receiver whose MaxVersion equals the
// sender's LastGCVersion rejected forever a delta the sender considered
// reset-free.
func (ns *NodeState) classify(d *NodeDelta) deltaStatus {
	if d.FromVersionExcluded > ns.maxVersion {
		// From the future: normal after a reset or with reordered datagrams.
		return deltaReject
	}
	compatible := d.LastGCVersion <= ns.lastGCVersion || d.LastGCVersion <= ns.maxVersion
	if !compatible {
		if d.FromVersionExcluded != 0 {
			return deltaReject
		}
		return deltaApplyAfterReset
	}
	if ns.maxVersion < d.MaxVersion {
		if ns.maxVersion < ns.lastGCVersion && d.LastGCVersion < ns.lastGCVersion && d.MaxVersion < ns.lastGCVersion {
			// We were reset and have not caught up: our entries are the
			// low versions of a state taken after every tombstone up to
			// our LastGCVersion was collected. This sender has not seen
			// those collections, and its entries up to d.MaxVersion may be
			// values that such a tombstone overwrote: no later delta would
			// ever delete them again (upstream has the same hole). Wait for
			// a sender that has caught up; the owner always has.
			return deltaReject
		}
		return deltaApply
	}
	return deltaReject
}

// applyDelta applies a node delta that classify accepted, firing l for
// every key written that is not a tombstone. A reset first replaces the
// state by an empty one carrying the sender's LastGCVersion; wiped keys are
// not notified.
func (ns *NodeState) applyDelta(now time.Time, d *NodeDelta, status deltaStatus, l *listeners) {
	if status == deltaApplyAfterReset {
		ns.clearKVs()
		ns.heartbeat = 0
		ns.maxVersion = 0
		ns.lastGCVersion = d.LastGCVersion
	}
	floor := ns.maxVersion
	for _, kv := range d.KeyValues {
		if kv.Version <= floor {
			continue // already known
		}
		if kv.Status != StatusSet && kv.Version <= ns.lastGCVersion {
			continue // a tombstone we already collected
		}
		v := VersionedValue{Value: kv.Value, Version: kv.Version, Status: kv.Status}
		if kv.Status != StatusSet {
			v.MarkedAt = now
		}
		ns.setVersionedFiring(kv.Key, v, l)
	}
	if d.MaxVersion < ns.maxVersion {
		panic(fmt.Sprintf("chitchat: invariant violated: node %v: delta max version %d below state max version %d after apply",
			*ns.id, d.MaxVersion, ns.maxVersion))
	}
	ns.maxVersion = d.MaxVersion
}
