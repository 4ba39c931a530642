package failuredetector

import (
	"maps"
	"slices"
	"time"
)

// Detector tracks heartbeat windows and the live/dead verdicts for nodes
// identified by K (Rust's FailureDetector).
//
// Verdicts change only in [Detector.UpdateLiveness] and
// [Detector.GarbageCollect]; heartbeats alone never make a node live or dead.
//
// Invariants: no node is both live and dead; a live node has a window with
// at least one interval as of its last UpdateLiveness; a node may be dead
// without a window (it was judged before any heartbeat).
//
// A Detector is not safe for concurrent use. Create it with [New].
type Detector[K comparable] struct {
	cfg     Config
	model   model
	windows map[K]*window
	live    map[K]struct{}
	// dead maps a node to the time it was first found dead in its current
	// death; the grace periods count from there.
	dead map[K]time.Time
}

// New returns an empty detector, or the [Config.Validate] error.
func New[K comparable](cfg Config) (*Detector[K], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector[K]{
		cfg:     cfg,
		model:   newModel(cfg),
		windows: make(map[K]*window),
		live:    make(map[K]struct{}),
		dead:    make(map[K]time.Time),
	}, nil
}

// Config returns the configuration the detector was created with.
func (d *Detector[K]) Config() Config { return d.cfg }

func (d *Detector[K]) window(id K) *window {
	w, ok := d.windows[id]
	if !ok {
		w = &window{}
		d.windows[id] = w
	}
	return w
}

// ReportHeartbeat records that a new heartbeat of id was observed at now.
// The first report only starts the clock: phi needs two reports.
func (d *Detector[K]) ReportHeartbeat(id K, now time.Time) {
	d.window(id).reportHeartbeat(&d.model, now)
}

// EnsureWindow starts tracking id with an empty window and no heartbeat, if
// it is not tracked yet. It lets a node that was just (re)created be judged
// dead, and later garbage collected, even if it never heart-beats.
func (d *Detector[K]) EnsureWindow(id K) {
	d.window(id)
}

// Phi returns id's current phi; ok is false if id has no window or no
// recorded interval yet (including right after a reset). Phi is never NaN
// and never negative.
func (d *Detector[K]) Phi(id K, now time.Time) (phi float64, ok bool) {
	w, found := d.windows[id]
	if !found {
		return 0, false
	}
	return w.phi(&d.model, now)
}

// UpdateLiveness re-judges id at now. It is live iff its phi is defined and
// <= PhiThreshold. Otherwise it is dead: its time of death is recorded unless
// it is already dead (so repeated rounds do not postpone garbage
// collection), and its window is reset so that, if it comes back, it is
// judged on fresh intervals only.
func (d *Detector[K]) UpdateLiveness(id K, now time.Time) {
	if phi, ok := d.Phi(id, now); ok && phi <= d.cfg.PhiThreshold {
		d.live[id] = struct{}{}
		delete(d.dead, id)
		return
	}
	delete(d.live, id)
	if _, ok := d.dead[id]; !ok {
		d.dead[id] = now
	}
	if w, ok := d.windows[id]; ok {
		w.reset()
	}
}

// GarbageCollect forgets and returns (in no particular order) every node
// that has been dead for at least DeadNodeGracePeriod at now. It returns nil
// if there are none.
func (d *Detector[K]) GarbageCollect(now time.Time) []K {
	var collected []K
	for id, tDeath := range d.dead {
		if d.cfg.GracePeriodOver(tDeath, now) {
			collected = append(collected, id)
		}
	}
	for _, id := range collected {
		delete(d.dead, id)
		delete(d.windows, id)
	}
	return collected
}

// IsLive reports whether id was live at its last UpdateLiveness.
func (d *Detector[K]) IsLive(id K) bool {
	_, ok := d.live[id]
	return ok
}

// IsDead reports whether id was dead at its last UpdateLiveness and has not
// been garbage collected since.
func (d *Detector[K]) IsDead(id K) bool {
	_, ok := d.dead[id]
	return ok
}

// TimeOfDeath returns when id was first found dead in its current death.
func (d *Detector[K]) TimeOfDeath(id K) (time.Time, bool) {
	t, ok := d.dead[id]
	return t, ok
}

// IsScheduledForDeletion reports whether id has been dead for strictly more
// than half of DeadNodeGracePeriod at now. Owners stop advertising such nodes
// so that peers forget them before they are garbage collected.
func (d *Detector[K]) IsScheduledForDeletion(id K, now time.Time) bool {
	tDeath, ok := d.dead[id]
	return ok && d.cfg.ScheduledForDeletion(tDeath, now)
}

// LiveNodes returns the live nodes in no particular order (nil if none).
func (d *Detector[K]) LiveNodes() []K {
	return slices.Collect(maps.Keys(d.live))
}

// DeadNodes returns the dead nodes in no particular order (nil if none).
func (d *Detector[K]) DeadNodes() []K {
	return slices.Collect(maps.Keys(d.dead))
}

// ScheduledForDeletionNodes returns the dead nodes for which
// IsScheduledForDeletion(id, now) holds, in no particular order (nil if
// none).
func (d *Detector[K]) ScheduledForDeletionNodes(now time.Time) []K {
	var ids []K
	for id, tDeath := range d.dead {
		if d.cfg.ScheduledForDeletion(tDeath, now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Forget drops every trace of id (window, live and dead state), for owners
// that remove a node for reasons of their own. A later report starts afresh.
func (d *Detector[K]) Forget(id K) {
	delete(d.windows, id)
	delete(d.live, id)
	delete(d.dead, id)
}

// Len returns the number of nodes that have a window. Nodes judged dead
// without ever having a window are not counted.
func (d *Detector[K]) Len() int { return len(d.windows) }
