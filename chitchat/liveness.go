package chitchat

import (
	"net/netip"
	"slices"
	"time"
)

// Round is what a gossip round asks the caller to send: Syn to each target.
type Round struct {
	Targets []netip.AddrPort
	Syn     *Syn
	// Pushes carry news and notices the rate limit held back, and death
	// notices of nodes found dead this round.
	Pushes []Envelope
	// Streams are the peers to run a stream exchange with
	// (docs/design/scale.md §4): CreateStreamSyn, then Step each answer
	// with Inbound.Stream.
	Streams []netip.AddrPort
}

// Tick runs one gossip round: it picks the targets, increments the self
// heartbeat, collects expired tombstones, builds the Syn, then updates
// liveness (publishing the live-nodes watch) and collects dead nodes.
func (e *Engine) Tick(now time.Time) Round {
	t := e.targetSets()
	monitor, monitored := netip.AddrPort{}, false
	if e.monitoring() {
		monitor, monitored = e.monitorTarget()
	}
	k := gossipCount
	if monitored {
		k-- // the monitor takes a random target's place
	}
	nodes, deadTarget, seedTarget := selectTargets(e.rng, t.peers, t.live, t.dead, nodeAddr, t.seeds, k)
	if monitored && !slices.Contains(nodes, monitor) {
		nodes = append(nodes, monitor)
	}
	e.answers.endRound(nodes) // live peers (or any, while none is)
	if probe, ok := e.probeTarget(); ok && !slices.Contains(nodes, probe) {
		nodes = append(nodes, probe)
	}
	for _, probe := range e.confirmTargets(now) {
		if !slices.Contains(nodes, probe) {
			nodes = append(nodes, probe)
		}
	}
	if deadTarget.IsValid() {
		nodes = append(nodes, deadTarget)
	}
	if seedTarget.IsValid() {
		nodes = append(nodes, seedTarget)
	}
	e.round++
	e.selfState().incHeartbeat()
	e.GCKeys(now)
	syn := e.CreateSyn(now)
	e.UpdateLiveness(now)
	return Round{Targets: nodes, Syn: syn, Pushes: e.Flush(now), Streams: e.dueStreams(now)}
}

// targetSets caches the sets Tick draws gossip targets from: the live
// peers, the dead peers, the seeds other than ourselves, and every peer
// while none is live. They change only when a state is added or removed, a
// peer's liveness changes, or the seeds change, and valid is cleared then;
// rebuilding them every round (sorting thousands of addresses) was the
// largest cost of a round. Peers are held as their states, one per
// advertised address, in address order: 8 bytes a peer where an address
// took 32 (issue 13: paid once per node per observer).
type targetSets struct {
	valid             bool
	peers, live, dead []*NodeState
	seeds             []netip.AddrPort
}

// targetSets returns the sets, rebuilt if they are stale.
func (e *Engine) targetSets() *targetSets {
	t := &e.targets
	if t.valid {
		return t
	}
	t.live, t.dead = t.live[:0], t.dead[:0]
	for _, ns := range e.states {
		if *ns.id == e.self {
			continue
		}
		if ns.live {
			t.live = append(t.live, ns)
		}
		if ns.dead && !ns.left {
			t.dead = append(t.dead, ns)
		}
	}
	t.live, t.dead = shrink(nodeSet(t.live)), shrink(nodeSet(t.dead))
	// Targets are drawn from every peer only while none is live: only then
	// is the set of every peer worth its memory.
	t.peers = nil
	if len(t.live) == 0 {
		for _, ns := range e.states {
			if *ns.id != e.self {
				t.peers = append(t.peers, ns)
			}
		}
		t.peers = nodeSet(t.peers)
	}
	t.seeds = t.seeds[:0]
	for _, s := range e.seeds {
		if s != e.self.Addr {
			t.seeds = append(t.seeds, s)
		}
	}
	t.valid = true
	return t
}

// recipient returns the address a Syn to addr is sealed for: addr itself
// when it is the advertised address of a node we know, else the zero
// AddrPort ("any node"), for seeds reached at another address than the one
// they advertise.
func (e *Engine) recipient(addr netip.AddrPort) netip.AddrPort {
	t := e.targetSets()
	for _, set := range [][]*NodeState{t.live, t.dead, t.peers} {
		if _, ok := slices.BinarySearchFunc(set, addr, func(ns *NodeState, a netip.AddrPort) int { return ns.id.Addr.Compare(a) }); ok {
			return addr
		}
	}
	return netip.AddrPort{}
}

// shrink lets go of a buffer that outgrew its contents (every peer is dead
// at start, then live): the sets are kept between rebuilds. Whatever it
// keeps past len is cleared, so that a removed node is not held.
func shrink(s []*NodeState) []*NodeState {
	switch {
	case len(s) == 0:
		return nil
	case cap(s) > 2*len(s)+16:
		return slices.Clone(s)
	}
	clear(s[len(s):cap(s)])
	return s
}

// nodeSet sorts s by advertised address and keeps one node per address
// (two generations of a node share one while the old one is held).
func nodeSet(s []*NodeState) []*NodeState {
	slices.SortFunc(s, func(a, b *NodeState) int { return a.id.Addr.Compare(b.id.Addr) })
	return slices.CompactFunc(s, func(a, b *NodeState) bool { return a.id.Addr == b.id.Addr })
}

// GCKeys removes, from every node state, tombstones and TTL'd keys marked at
// least MarkedForDeletionGracePeriod before now.
func (e *Engine) GCKeys(now time.Time) {
	for _, ns := range e.states {
		ns.gcKeys(now, e.cfg.MarkedForDeletionGracePeriod)
		if ns.left {
			e.checkLeft(now, ns) // a leave key with a TTL may be gone
		}
	}
}

// UpdateLiveness re-evaluates every peer with the failure detector,
// publishes the live-nodes watch if the live set or a live node's max
// version changed, and garbage collects nodes dead for longer than the
// dead-node grace period.
//
// Invariant: for every peer state, ns.live == fd.IsLive(ns.slot) and
// ns.dead reports whether the detector holds a time of death for ns.slot
// (the time stays there: Engine.goneAt). The detector's verdicts change
// only here, so mirroring them here keeps the hot paths (digests, deltas,
// target selection) off the detector.
func (e *Engine) UpdateLiveness(now time.Time) {
	e.noVictim = false // verdicts may change
	e.watchPredecessors(now)
	e.suspectSilent(now)
	for _, ns := range e.states {
		// Left nodes are out of the failure detector's hands (see
		// checkLeft); they are collected after the grace period.
		if *ns.id != e.self && !ns.left {
			e.judge(ns, now)
		}
	}
	e.forgetUnjudged()
	e.publishLive()
	// Removed after the scan, which removal would disturb; in ID order.
	var gone []NodeID
	for _, ns := range e.states {
		if e.fd.collect(ns.slot, now) || (ns.left && e.cfg.FailureDetector.GracePeriodOver(ns.leftTime(), now)) {
			gone = append(gone, *ns.id)
		}
	}
	for _, id := range gone {
		e.log.Info("node garbage collected", "node", id)
		e.removeNode(id)
	}
	if len(gone) > 0 && len(e.neverLive) > 0 {
		// The never-live queue holds states: a collected node's entry
		// would keep it (its name, its keys) until the stale entries
		// outnumbered the others, possibly for hours (hostile review 13,
		// TestHostile13CollectedNeverLiveNotPinned). makeRoom's evictions
		// pop their entry, or find the queue empty; collection is the one
		// removal that leaves one behind.
		e.compactNeverLive()
		return
	}
	e.maybeCompactNeverLive()
}

// judge re-evaluates one peer with the failure detector and mirrors the
// verdict. A node found dead for the first time is announced with a death
// notice, unless one came already (docs/design/scale.md §7).
func (e *Engine) judge(ns *NodeState, now time.Time) {
	b := e.bar(ns)
	e.fd.UpdateLiveness(ns.slot, now, b)
	// A live node past half the threshold is a suspect: our Syns list it,
	// so that whoever has a fresher heartbeat answers with it.
	phi, ok := e.fd.PhiBy(ns.slot, now, b)
	suspect := e.fd.IsLive(ns.slot) && ok && phi > e.cfg.FailureDetector.PhiThreshold/2
	if suspect && ns.deathHeard {
		// A death notice came before we shared the suspicion, and no
		// heartbeat rose since: we share it now (applyNotices).
		e.dieByNotice(ns, now)
		suspect = false
	}
	e.mirror(ns, now)
	ns.suspect = suspect
}

// mirror copies the detector's verdict on ns into its state.
func (e *Engine) mirror(ns *NodeState, now time.Time) {
	wasLive, wasDead := ns.live, ns.dead
	ns.live = e.fd.IsLive(ns.slot)
	if ns.live && !ns.everLive {
		ns.everLive = true
		e.numNeverLive--
	}
	_, ns.dead = e.fd.TimeOfDeath(ns.slot)
	if ns.live != wasLive || ns.dead != wasDead {
		e.setsChanged()
		e.liveDirty = true
	}
	if ns.live == wasLive {
		return
	}
	if ns.live {
		e.log.Info("node is live", "node", *ns.id)
		ns.deadNoticed = false
		return
	}
	e.log.Info("node is dead", "node", *ns.id)
	ns.deathHeard = false
	if wasLive && !ns.deadNoticed {
		ns.deadNoticed = true
		e.queueNotice(Notice{Kind: NoticeDead, ID: *ns.id, Heartbeat: ns.heartbeat})
	}
}

// publishLive publishes the live-nodes watch if the live set or a live
// node's max version changed since the last publication.
//
// The copies are the published value, made here, in one allocation: one
// object where there were as many as live nodes, and what the last
// publication held doubles as the list to compare with (it held the slot
// and max version of each live node beside the copies before: 16 more
// bytes per node per observer, issue 13). An Engine whose watch is never
// read pays the copies all the same.
func (e *Engine) publishLive() {
	e.liveDirty = false
	// Compare first: most rounds publish nothing, and need no second list.
	i, n := 0, 0
	for _, ns := range e.states {
		if *ns.id == e.self || (ns.live && !ns.left) {
			if i >= 0 {
				if i == len(e.lastLive) || e.lastLive[i].id != ns.id || e.lastLive[i].maxVersion != ns.maxVersion {
					i = -1
				} else {
					i++
				}
			}
			n++
		}
	}
	if i == len(e.lastLive) {
		return
	}
	current := make([]NodeState, 0, n)
	for _, ns := range e.states {
		if *ns.id == e.self || (ns.live && !ns.left) {
			current = append(current, ns.copyOf())
		}
	}
	e.recordEvents(e.lastLive, current, e.lastSelf)
	e.lastLive, e.lastSelf = current, e.selfState().id
	e.published, e.publishPending = nil, true
	e.publishedGen++
}

// LiveNodesWatch returns the live-nodes watch value and its generation,
// which grows by one at each publication. The value is a list of copies of
// the live nodes' states in ID order, as they were at the publication,
// filtered by Config.ExtraLivenessPredicate (which sees the copies). A
// publication happens at the end of a round in which the live set or a
// live node's max version changed. Before the first round it is empty.
//
// The copies of one value share one allocation: keeping a pointer to one
// of them keeps them all (48 bytes per live node, with what they point to).
// To keep a node's state beyond the value, keep its Clone.
func (e *Engine) LiveNodesWatch() (generation uint64, nodes []*NodeState) {
	if e.publishPending {
		e.publishPending = false
		published := make([]*NodeState, 0, len(e.lastLive))
		for i := range e.lastLive {
			c := &e.lastLive[i]
			if e.cfg.ExtraLivenessPredicate != nil && !e.cfg.ExtraLivenessPredicate(c) {
				continue
			}
			published = append(published, c)
		}
		e.published = published
	}
	return e.publishedGen, e.published
}

// LiveNodes returns the self node, then every peer the failure detector
// deems live, in ID order. The extra liveness predicate is not applied.
func (e *Engine) LiveNodes() []NodeID {
	live := []NodeID{e.self}
	for _, ns := range e.states {
		if ns.live && !ns.left {
			live = append(live, *ns.id)
		}
	}
	return live
}

// LeftNodes returns the peers that left gracefully (Server.Leave), in ID
// order, until they are garbage collected.
func (e *Engine) LeftNodes() []NodeID {
	var left []NodeID
	for _, ns := range e.states {
		if ns.left {
			left = append(left, *ns.id)
		}
	}
	return left
}

// DeadNodes returns the nodes the failure detector deems dead, in ID order.
// A node heard of second-hand is dead until it shows evidence of life (a
// heartbeat rise, direct contact, an alive notice; docs/PROTOCOL.md §7.3).
func (e *Engine) DeadNodes() []NodeID {
	var dead []NodeID
	for _, ns := range e.states {
		if ns.dead && !ns.left {
			dead = append(dead, *ns.id)
		}
	}
	return dead
}

// ScheduledForDeletionNodes returns the dead nodes left out of digests and
// deltas, in ID order.
func (e *Engine) ScheduledForDeletionNodes(now time.Time) []NodeID {
	var s []NodeID
	for _, ns := range e.states {
		if e.scheduledForDeletion(ns, now) {
			s = append(s, *ns.id)
		}
	}
	return s
}
