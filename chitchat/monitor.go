package chitchat

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gossipkit/chitchat-go/failuredetector"
)

// Ring monitors (docs/design/scale.md §5, "Monitors on the ring").
//
// When a Syn no longer carries the whole digest, an observer sees a rise of
// a given node's heartbeat only every few rounds (every ~9 at N = 5,000),
// and irregularly: a threshold of 8 such intervals is slow, and over N²
// (observer, node) pairs its tail finds live nodes dead. So each node
// gossips, in every round, with one of its monitorCount live successors on
// the ring of refs (in turn) in place of one of its random targets: its
// monitors hear from it directly every monitorCount rounds at most, judge
// it on short, regular intervals, and announce its death with a notice
// that every observer sharing the suspicion applies. Every other observer
// that hears of it less often than they do defers to them: its own verdict
// needs deferFactor times the threshold (Engine.bar).
//
// Monitors are a function of the live set and the ring only, so every node
// with the same view agrees on them; while views differ (a node just
// joined, or found dead here and not yet there) a node is monitored by a
// few more or fewer observers, never by none while it has live successors
// in anyone's view, and everyone still finds it dead by deferFactor times
// the threshold at worst. While the whole digest fits a Syn, or with push
// off (no death notices to defer to), nothing here applies: targets and
// verdicts are upstream's.
const (
	// monitorCount is how many successors monitor a node. Three: a node
	// dies with one of its monitors at once (a rack) and is still watched.
	monitorCount = 3
	// deferFactor multiplies the phi threshold of an observer that is not
	// one of a node's monitors.
	deferFactor = 2
)

// monitoring reports whether ring monitors are in force: our last Syn
// covered part of the ring only, and death notices are pushed.
func (e *Engine) monitoring() bool { return e.partialCover && e.pushEnabled() }

// ringIndex returns ns's position in byRef.
func (e *Engine) ringIndex(ns *NodeState) int {
	j, _ := slices.BinarySearchFunc(e.byRef, ns.ref, compareRef)
	for ; j < len(e.byRef) && e.byRef[j] != ns; j++ {
	}
	return j
}

// monitorTarget returns the live successor of ours that this round's Syn
// goes to: the (round mod monitorCount)-th, or the last there is if there
// are fewer.
func (e *Engine) monitorTarget() (netip.AddrPort, bool) {
	n := len(e.byRef)
	want := int(e.round % monitorCount)
	var found *NodeState
	i := e.ringIndex(e.selfNS)
	for step, seen := 1, 0; step < n && seen <= want; step++ {
		ns := e.byRef[(i+step)%n]
		if ns.live && !ns.left {
			found, seen = ns, seen+1
		}
	}
	if found == nil {
		return netip.AddrPort{}, false
	}
	return found.id.Addr, true
}

// watchPredecessors records our monitorCount live predecessors on the
// ring, the nodes we monitor (Engine.watched), keeping the time of the
// last word from those we monitored already; a new one counts from now.
// Called at the start of each liveness update: verdicts made during it do
// not move the set.
func (e *Engine) watchPredecessors(now time.Time) {
	was, wasAt := e.watched, e.contactAt
	e.watched = [monitorCount]*NodeState{}
	if !e.monitoring() {
		return
	}
	n := len(e.byRef)
	i := e.ringIndex(e.selfNS)
	for step, k := 1, 0; step < n && k < monitorCount; step++ {
		ns := e.byRef[(i-step+n)%n]
		if ns.live && !ns.left {
			e.watched[k], e.contactAt[k] = ns, now
			if j := slices.Index(was[:], ns); j >= 0 {
				e.contactAt[k] = wasAt[j]
			}
			k++
		}
	}
}

// bar returns what ns is judged by here (the detector's phi threshold,
// and a cap on its prior):
//   - a node we monitor: the configured threshold, with the prior capped at
//     monitorCount gossip intervals: it gossips with us at least that
//     often, however rarely we hear of a typical peer (the learned prior,
//     about 9 rounds at N = 5,000, would otherwise weigh as 5 intervals in
//     its mean, and hold our verdict back for as long as its window holds
//     few intervals);
//   - another node, when our own view of it is sparser than its monitors'
//     (our mean interval between its rises, or our typical peer's, the
//     learned prior, exceeds the monitorCount rounds within which a
//     monitor hears from it directly): deferFactor times the threshold,
//     and a mean no shorter than the typical peer's (Bar.PriorFloor). At
//     N = 1,000 an observer sees a rise every round or two and judges as
//     well as a monitor; at 5,000, every 9 or so, and a window that holds
//     the dozen intervals of a cold start (a flood of rises, every round
//     or less) has a mean of a round or two for a while: judged by it,
//     live nodes were found dead 25 rounds after the flood ended, and
//     their death notices taken by every observer at half the threshold
//     of such a mean (N = 5,000, 450 false deaths);
//   - otherwise, or when monitors are not in force: the configuration.
func (e *Engine) bar(ns *NodeState) failuredetector.Bar {
	b := failuredetector.Bar{Threshold: e.cfg.FailureDetector.PhiThreshold}
	if !e.monitoring() {
		return b
	}
	every := monitorCount * e.cfg.GossipInterval
	if slices.Contains(e.watched[:], ns) {
		b.MaxPrior = every
		return b
	}
	// max(mean, prior) > every, the prior first: it costs nothing, and
	// at large N it decides.
	sparse := e.fd.model.Prior() > every
	if !sparse {
		mean, ok := e.fd.Mean(ns.slot)
		sparse = !ok || mean > every
	}
	if sparse {
		b.Threshold *= deferFactor
		b.PriorFloor = true
	}
	return b
}

// phi returns ns's phi as judge and death notices weigh it (bar's prior).
func (e *Engine) phi(ns *NodeState, now time.Time) (float64, bool) {
	return e.fd.PhiBy(ns.slot, now, e.bar(ns))
}

// settling reports whether ns, dead here after it was seen live, died too
// recently for a hearsay rise to be life (a node never seen live, such as
// one first heard of second-hand at a cold start, is dead from its
// creation, and its first rise is its first evidence, not its past): while monitors are in force, for deferFactor × the
// threshold × the learned prior after its time of death here (the time an
// observer that defers would take to find it dead itself; 150 rounds at
// N = 5,000, 30 at 1,000).
//
// Monitors find a node dead before its last heartbeats have reached every
// observer: a node's heartbeat also rises with each message it handles
// (about ten a round), and the values it sent in its last rounds spread
// for tens of rounds at N = 5,000. Reported, each revived the node where it
// was already dead: in the first N = 5,000 run with notices from monitors,
// nearly every observer held the killed node live again 40 to 55 rounds
// after the kill. The node itself, or a member vouching for it (its
// answer to a death notice, a welcome), is not hearsay: a node found dead
// in error, or back from a partition, is live again at its first word.
func (e *Engine) settling(ns *NodeState, now time.Time) bool {
	if !e.monitoring() {
		return false
	}
	tod, ok := e.fd.TimeOfDeath(ns.slot)
	if !ok {
		return false
	}
	settle := time.Duration(deferFactor * e.cfg.FailureDetector.PhiThreshold * float64(e.fd.model.Prior()))
	return now.Sub(tod) < settle
}

// probeTarget returns the address of the node whose hearsay rise settling
// last held back, if it is still dead here, and forgets it: one Syn a
// round at most. Its answer, if it is live, is its own word and brings it
// back at once. Without it, one forged death notice (sent to us alone,
// so the node never refutes it) kept a live node dead here for the whole
// settling time (16 × the learned prior: 17 s where hearsay rises came
// every second, 146 s with the prior inflated by 1,000 invented nodes;
// at N = 5,000 it would hear from us directly once in thousands of
// rounds). A node really dead costs a Syn to its address per round in
// which its last heartbeats reach us.
func (e *Engine) probeTarget() (netip.AddrPort, bool) {
	id := e.probe
	e.probe, e.probes, e.probed = NodeID{}, 0, NodeID{}
	if id == (NodeID{}) {
		return netip.AddrPort{}, false
	}
	ns := e.node(id)
	if ns == nil || !ns.dead || ns.left {
		return netip.AddrPort{}, false
	}
	e.probed = id
	return ns.id.Addr, true
}

// holdBack records ns, whose hearsay rise settling held back, as a
// candidate for the next round's probe: a node we had direct contact with
// (ns.heard) before one we never had, and among equals one drawn
// uniformly (reservoir sampling). A forger that makes invented nodes die
// here and tells a rise of theirs after each of a victim's would
// otherwise take the probe every round: invented nodes have never spoken
// to us from their own address.
func (e *Engine) holdBack(ns *NodeState) {
	cur := e.node(e.probe)
	switch {
	case cur == nil || (ns.heard && !cur.heard):
		e.probe, e.probes = *ns.id, 1
	case cur.heard && !ns.heard:
	default:
		e.probes++
		if e.rng.IntN(e.probes) == 0 {
			e.probe = *ns.id
		}
	}
}
