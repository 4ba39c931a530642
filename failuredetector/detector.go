package failuredetector

import "time"

// Detector tracks heartbeat windows and the live/dead verdicts for nodes
// identified by K (Rust's FailureDetector).
//
// Verdicts change only in [Detector.UpdateLiveness], [Detector.MarkDead]
// and [Detector.GarbageCollect]; heartbeats alone never make a node live or
// dead.
//
// Each node is one map entry holding its [Node] by value (104 bytes, no
// pointers, so the map is not scanned by the garbage collector).
//
// Invariants: no node is both live and dead; a live node had a defined phi
// at its last verdict; a node may be dead without a window (it was judged
// before any heartbeat); windows counts the entries with stateTracked.
//
// A Detector is not safe for concurrent use. Create it with [New].
type Detector[K comparable] struct {
	model   Model
	nodes   map[K]Node
	windows int
}

// New returns an empty detector, or the [Config.Validate] error.
func New[K comparable](cfg Config) (*Detector[K], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector[K]{
		model: newModel(cfg),
		nodes: make(map[K]Node),
	}, nil
}

// Config returns the configuration the detector was created with.
func (d *Detector[K]) Config() Config { return d.model.cfg }

// track marks n as having a window.
func (d *Detector[K]) track(n *Node) {
	if n.flags&stateTracked == 0 {
		n.flags |= stateTracked
		d.windows++
	}
}

// ReportHeartbeat records that a new heartbeat of id was observed at now.
// The first report only starts the clock: phi needs two reports, or one
// with LearnedPrior.
func (d *Detector[K]) ReportHeartbeat(id K, now time.Time) {
	n := d.nodes[id]
	d.track(&n)
	n.ReportHeartbeat(&d.model, now)
	d.nodes[id] = n
}

// EnsureWindow starts tracking id with an empty window and no heartbeat, if
// it is not tracked yet. It lets a node that was just (re)created be judged
// dead, and later garbage collected, even if it never heart-beats.
func (d *Detector[K]) EnsureWindow(id K) {
	n := d.nodes[id]
	if n.flags&stateTracked == 0 {
		d.track(&n)
		d.nodes[id] = n
	}
}

// Phi returns id's current phi; ok is false if id has no recorded interval
// (none yet, or none since its window was reset by a death) and, with
// LearnedPrior, no heartbeat reported since that reset either. Phi is
// never NaN and never negative.
func (d *Detector[K]) Phi(id K, now time.Time) (phi float64, ok bool) {
	n := d.nodes[id]
	return n.Phi(&d.model, now)
}

// UpdateLiveness re-judges id at now. It is live iff its phi is defined and
// <= PhiThreshold. Otherwise it is dead: its time of death is recorded unless
// it is already dead (so repeated rounds do not postpone garbage
// collection), and its window is reset so that, if it comes back, it is
// judged on fresh intervals only.
func (d *Detector[K]) UpdateLiveness(id K, now time.Time) {
	n := d.nodes[id]
	n.UpdateLiveness(&d.model, now)
	d.nodes[id] = n
}

// MarkDead makes id dead at now on an outside verdict (a death notice from
// a peer), exactly as if its phi had crossed the threshold at now: a live
// node becomes dead with time of death now, a dead one keeps its time of
// death, and the window is reset (its last heartbeat time is kept). Like
// UpdateLiveness, it makes an unknown id dead without a window. A
// heartbeat reported later is judged afresh by the next UpdateLiveness.
//
// The detector cannot tell a stale notice from a fresh one: owners should
// pass only notices that are news relative to the heartbeats they have
// reported (for instance, about a heartbeat no older than the last one
// reported).
func (d *Detector[K]) MarkDead(id K, now time.Time) {
	n := d.nodes[id]
	n.MarkDead(&d.model, now)
	d.nodes[id] = n
}

// GarbageCollect forgets and returns (in no particular order) every node
// that has been dead for at least DeadNodeGracePeriod at now. It returns nil
// if there are none.
func (d *Detector[K]) GarbageCollect(now time.Time) []K {
	var collected []K
	for id, n := range d.nodes {
		if tDeath, dead := n.TimeOfDeath(&d.model); dead && d.model.cfg.GracePeriodOver(tDeath, now) {
			collected = append(collected, id)
			d.forget(id, n)
		}
	}
	return collected
}

// IsLive reports whether id was live at its last verdict (UpdateLiveness or
// MarkDead).
func (d *Detector[K]) IsLive(id K) bool {
	n := d.nodes[id]
	return n.IsLive()
}

// IsDead reports whether id was dead at its last verdict (UpdateLiveness or
// MarkDead) and has not been garbage collected since.
func (d *Detector[K]) IsDead(id K) bool {
	n := d.nodes[id]
	return n.IsDead()
}

// TimeOfDeath returns when id was first found dead in its current death.
func (d *Detector[K]) TimeOfDeath(id K) (time.Time, bool) {
	n := d.nodes[id]
	return n.TimeOfDeath(&d.model)
}

// IsScheduledForDeletion reports whether id has been dead for strictly more
// than half of DeadNodeGracePeriod at now. Owners stop advertising such nodes
// so that peers forget them before they are garbage collected.
func (d *Detector[K]) IsScheduledForDeletion(id K, now time.Time) bool {
	tDeath, ok := d.TimeOfDeath(id)
	return ok && d.model.cfg.ScheduledForDeletion(tDeath, now)
}

// LiveNodes returns the live nodes in no particular order (nil if none).
func (d *Detector[K]) LiveNodes() []K {
	var ids []K
	for id, n := range d.nodes {
		if n.IsLive() {
			ids = append(ids, id)
		}
	}
	return ids
}

// DeadNodes returns the dead nodes in no particular order (nil if none).
func (d *Detector[K]) DeadNodes() []K {
	var ids []K
	for id, n := range d.nodes {
		if n.IsDead() {
			ids = append(ids, id)
		}
	}
	return ids
}

// ScheduledForDeletionNodes returns the dead nodes for which
// IsScheduledForDeletion(id, now) holds, in no particular order (nil if
// none).
func (d *Detector[K]) ScheduledForDeletionNodes(now time.Time) []K {
	var ids []K
	for id, n := range d.nodes {
		if tDeath, dead := n.TimeOfDeath(&d.model); dead && d.model.cfg.ScheduledForDeletion(tDeath, now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Forget drops every trace of id (window, live and dead state), for owners
// that remove a node for reasons of their own. A later report starts afresh.
func (d *Detector[K]) Forget(id K) {
	if n, ok := d.nodes[id]; ok {
		d.forget(id, n)
	}
}

func (d *Detector[K]) forget(id K, n Node) {
	if n.flags&stateTracked != 0 {
		d.windows--
	}
	delete(d.nodes, id)
}

// Len returns the number of nodes that have a window. Nodes judged dead
// without ever having a window are not counted.
func (d *Detector[K]) Len() int { return d.windows }

// Prior returns the prior mean interval of the additive smoothing:
// InitialInterval, or with LearnedPrior the mean learned so far from every
// node's intervals.
func (d *Detector[K]) Prior() time.Duration { return d.model.Prior() }
