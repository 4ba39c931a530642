package chitchat

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// The owner is authoritative about itself (docs/design/scale.md §6).
//
// Peers only ever learn our heartbeat and versions from us, so a digest entry
// or a delta that claims, for the self node, a heartbeat above ours, or a max
// version or GC version above our max version, is a forgery or the state of a
// previous incarnation that used our NodeID. Either way the claim circulates
// and would make our real heartbeats look old (we would be dead for every
// holder) and our real deltas inapplicable (frozen). We refute it:
//
//   - heartbeat: ours jumps past the claim;
//   - state: our last GC version jumps past the claim and every live key
//     takes a new version above it, so every holder of the claimed state
//     finds our next delta incompatible and resets to the real one;
//   - a claim so far ahead that refuting it would leave less than
//     refuteHeadroom of version space cannot be outbid: we reincarnate (a new
//     generation with the same keys), as after a restart.
//
// Honest claims never trigger this: a peer that garbage collects our
// tombstones before we do raises its view of our GC version only up to our
// max version.

// refuteHeadroom is the version space a refutation must leave above the
// claim: 2^40 heartbeats is 35 years at one per millisecond.
const refuteHeadroom = 1 << 40

// refuteLimit is the largest claim a refutation follows.
const refuteLimit = maxSafeVersion - refuteHeadroom

// acceptable reports whether a digest entry about another node stays within
// the bounds every state must keep: heartbeat and versions at most
// maxSafeVersion, a name no longer than Limits.MaxNodeNameSize, a valid
// address (a message built by hand for Engine.Process may lack one).
func (e *Engine) acceptable(id NodeID, d NodeDigest) bool {
	return d.Heartbeat <= maxSafeVersion && d.MaxVersion <= maxSafeVersion && d.LastGCVersion <= maxSafeVersion &&
		len(id.Name) <= e.limits.MaxNodeNameSize && id.Addr.IsValid()
}

// checkSelfClaim refutes a digest entry about the self node that claims more
// than we produced.
func (e *Engine) checkSelfClaim(now time.Time, d NodeDigest) {
	self := e.selfState()
	if d.Heartbeat > self.heartbeat {
		e.refuteHeartbeat(now, d.Heartbeat)
	}
	if v := max(d.MaxVersion, d.LastGCVersion); v > e.selfState().maxVersion {
		e.refuteState(now, v)
	}
}

// selfDelta handles a node delta about the self node: never applied, but a
// claim like a digest entry.
func (e *Engine) selfDelta(now time.Time, nd *NodeDelta) {
	e.stats.SelfDeltasIgnored++
	claim := max(nd.MaxVersion, nd.LastGCVersion)
	for _, kv := range nd.KeyValues {
		claim = max(claim, kv.Version)
	}
	if claim > e.selfState().maxVersion {
		e.refuteState(now, claim)
	}
}

// echoFor returns what we hold of sender's state, to echo in the SynAck
// answering its Syn: only when the Syn came from sender's own address (the
// answer goes there), and when we hold keys of it.
func (e *Engine) echoFor(in Inbound, sender NodeID) *Echo {
	if sender == e.self || !in.From.IsValid() || normalizeAddr(in.From) != sender.Addr {
		return nil
	}
	ns, ok := e.lookup(sender)
	if !ok || ns.maxVersion == 0 {
		return nil
	}
	return &Echo{MaxVersion: ns.maxVersion, LastGCVersion: ns.lastGCVersion, Fingerprint: ns.fp()}
}

// checkEcho checks a peer's view of our own state. Versions above ours are
// a claim like any other. At our max version, the peer holds every version
// we wrote up to it, so its entries of status Set are ours (tombstones and
// TTL'd entries may differ: each node collects them on its own clock); a
// fingerprint other than ours means keys we never wrote at versions we did:
// a forged delta that claimed our next versions before we used them, or
// versions we had used that the peer had not received yet. Version numbers
// cannot show either, and the forged keys would stay, and our writes at
// those versions never reach the peer; so we refute as for a claim, at our
// max version: every holder resets to our real state.
func (e *Engine) checkEcho(now time.Time, echo Echo) {
	self := e.selfState()
	if claim := max(echo.MaxVersion, echo.LastGCVersion); claim > self.maxVersion {
		e.refuteState(now, claim)
		return
	}
	if echo.MaxVersion == self.maxVersion && echo.Fingerprint != self.fp() {
		e.stats.ForgedContent++
		e.log.Warn("a peer holds keys of this node that it never wrote", "max_version", self.maxVersion)
		e.refuteState(now, self.maxVersion)
	}
}

// refuteHeartbeat raises the self heartbeat past claim, or reincarnates.
func (e *Engine) refuteHeartbeat(now time.Time, claim uint64) {
	if claim >= refuteLimit {
		e.scheduleReincarnation(claim)
		return
	}
	e.stats.Refutations++
	e.log.Warn("refuting a claim about this node: heartbeat", "claimed", claim, "own", e.selfState().heartbeat)
	e.selfState().heartbeat = claim + 1
}

// refuteState moves the self node's versions past claim: the last GC version
// becomes claim+1 and every live key is rewritten above it, in the order of
// its previous versions, with its value, status and TTL. Tombstones are
// dropped: they are below the new GC version, which tells every peer to
// forget what it holds of us and take our state afresh.
func (e *Engine) refuteState(now time.Time, claim uint64) {
	self := e.selfState()
	if claim >= refuteLimit || claim+uint64(self.kvs.len())+1 >= refuteLimit {
		e.scheduleReincarnation(claim)
		return
	}
	e.stats.Refutations++
	e.log.Warn("refuting a claim about this node: versions", "claimed", claim, "own_max_version", self.maxVersion)
	live := self.liveEntriesByVersion()
	self.clearKVs()
	self.lastGCVersion = claim + 1
	self.maxVersion = claim + 1
	for _, kv := range live {
		self.maxVersion++
		kv.v.Version = self.maxVersion
		self.put(kv.k, kv.v)
	}
	e.setsChanged()
}

// scheduleReincarnation records a claim that cannot be outbid: the node
// reincarnates when settle runs, once the message at hand is handled.
// (Reincarnating at once drops and creates states under the feet of the
// walk that found the claim: a summary walk over byRef indexed past its
// heartbeats and panicked.)
func (e *Engine) scheduleReincarnation(claim uint64) {
	e.reincarnateClaim = max(e.reincarnateClaim, claim)
}

// settle carries out what handling a message left pending: a reincarnation.
func (e *Engine) settle(now time.Time) {
	if claim := e.reincarnateClaim; claim != 0 {
		e.reincarnateClaim = 0
		e.reincarnate(now, claim)
	}
}

// reincarnate gives the self node a new generation with the same keys, when
// a claim about it cannot be outbid. The old identity is remembered as
// collected with the largest heartbeat, so that no gossip about it can
// recreate it here; peers see it die like any silent node, and evict it
// first when they need room (it is superseded: makeRoom).
//
// The new generation is at least the old one plus one and the time in
// nanoseconds, plus up to 2^24 ns at random: a forger cannot plant state
// under it in advance (it would have to guess it), and an identity we hold
// already or remember as collected is skipped anyway.
func (e *Engine) reincarnate(now time.Time, claim uint64) {
	old := e.selfState()
	id := *old.id // a copy: the old identity is shared with copies, and immutable
	id.Generation = max(id.Generation+1, uint64(max(now.UnixNano(), 0))) + e.rng.Uint64N(1<<24)
	for e.heldOrCollected(id) {
		id.Generation++
	}
	e.stats.Reincarnations++
	e.log.Warn("a claim about this node cannot be refuted: reincarnating with a new generation",
		"claimed", claim, "old", *old.id, "new", id)
	live := old.liveEntriesByVersion()
	e.dropNode(old)
	e.gcHist.put(*old.id, math.MaxUint64)
	e.self = id
	e.cfg.ID = id
	ns := e.createNode(id)
	ns.heartbeat = 1
	e.evidence(ns)
	for _, kv := range live {
		ns.maxVersion++
		kv.v.Version = ns.maxVersion
		ns.put(kv.k, kv.v)
	}
}

// heldOrCollected reports whether we hold a state for id or remember it as
// garbage collected.
func (e *Engine) heldOrCollected(id NodeID) bool {
	if _, ok := e.lookup(id); ok {
		return true
	}
	_, ok := e.gcHist.peek(id)
	return ok
}

type keyedValue struct {
	k string
	v VersionedValue
}

// liveEntriesByVersion returns the non-tombstone entries in version order.
func (ns *NodeState) liveEntriesByVersion() []keyedValue {
	live := make([]keyedValue, 0, ns.kvs.len())
	for k, v := range ns.kvs.all() {
		if v.Status != StatusDeleted {
			live = append(live, keyedValue{k, v})
		}
	}
	// Versions are unique within a node.
	slices.SortFunc(live, func(a, b keyedValue) int { return cmp.Compare(a.v.Version, b.v.Version) })
	return live
}
