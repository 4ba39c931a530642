package failuredetector

import "time"

// Node is one node's whole failure-detection state: its [Window] and its
// verdict (live, dead since a time, or not judged yet), in 104 bytes
// without pointers. Its zero value is a node that has seen no heartbeat
// and has not been judged. A [Detector] keeps one per node in a map; an
// owner that already has a struct per node can embed a Node instead and
// call its methods with a shared [Model].
//
// Verdicts change only in [Node.UpdateLiveness] and [Node.MarkDead];
// heartbeats alone never make a node live or dead.
//
// The verdict bits live in the window's flags byte, which would otherwise
// be padding.
//
// Invariants: stateLive and stateDead are exclusive; death is meaningful
// only when dead.
type Node struct {
	Window
	death int64 // time of death, nanoseconds since the model's epoch
}

// Bits of Window.flags that belong to the Node (above flagsWindow).
const (
	stateLive uint8 = (flagsWindow + 1) << iota
	stateDead
	// stateTracked is the Detector's: the node has a window in the sense
	// of Detector.Len (it was reported or ensured, not only judged).
	stateTracked
)

// UpdateLiveness re-judges the node at now. It is live iff its phi is
// defined and <= PhiThreshold. Otherwise it is dead: its time of death is
// recorded unless it is already dead (so repeated rounds do not postpone
// garbage collection), and its window is reset so that, if it comes back,
// it is judged on fresh intervals only. Its last heartbeat time is kept.
func (n *Node) UpdateLiveness(m *Model, now time.Time) {
	n.UpdateLivenessBy(m, now, Bar{Threshold: m.cfg.PhiThreshold})
}

// Bar is what one judgement of a node goes by, for an owner that judges
// some nodes otherwise than the configuration says (an observer that
// defers to better-placed ones, or knows it hears from a node more often
// than from its typical peer).
type Bar struct {
	// Threshold replaces Config.PhiThreshold.
	Threshold float64
	// MaxPrior, if not 0, caps the prior in the node's mean
	// (Window.PhiBy).
	MaxPrior time.Duration
	// PriorFloor makes the (learned) prior a floor under the node's mean:
	// the node is expected to rise no more often than a typical peer,
	// however often it rose in the intervals its window holds. With few
	// intervals, and rates that changed since they were taken (the flood
	// of a cold start, then sparse rises at large N), the window's mean
	// is stale; the learned prior follows every peer's intervals.
	PriorFloor bool
}

// UpdateLivenessBy is UpdateLiveness by bar b instead of the configuration.
func (n *Node) UpdateLivenessBy(m *Model, now time.Time, b Bar) {
	if phi, ok := n.PhiBy(m, now, b); ok && phi <= b.Threshold {
		n.flags = n.flags&^stateDead | stateLive
		return
	}
	n.MarkDead(m, now)
}

// MarkDead makes the node dead at now on an outside verdict (a death
// notice from a peer), exactly as if its phi had crossed the threshold at
// now: a live or unjudged node becomes dead with time of death now, a dead
// one keeps its time of death, and the window is reset (its last heartbeat
// time is kept). A heartbeat reported later is judged afresh by the next
// UpdateLiveness.
func (n *Node) MarkDead(m *Model, now time.Time) {
	if n.flags&stateDead == 0 {
		n.death = m.offset(now)
	}
	n.flags = n.flags&^stateLive | stateDead
	n.Reset()
}

// ClearVerdict makes the node neither live nor dead, as if never judged,
// and keeps its window: for an owner that takes a node out of the
// detector's hands for a while (a node that announced it is leaving) and
// may hand it back (the leave was forged, and refuted), to be judged on
// the heartbeats it had.
func (n *Node) ClearVerdict() {
	n.flags &^= stateLive | stateDead
	n.death = 0
}

// IsLive reports whether the node was live at its last verdict.
func (n *Node) IsLive() bool { return n.flags&stateLive != 0 }

// IsDead reports whether the node was dead at its last verdict.
func (n *Node) IsDead() bool { return n.flags&stateDead != 0 }

// TimeOfDeath returns when the node was first found dead in its current
// death (Equal to the now passed then).
func (n *Node) TimeOfDeath(m *Model) (time.Time, bool) {
	if !n.IsDead() {
		return time.Time{}, false
	}
	return m.time(n.death), true
}
