package chitchat

import (
	"math/bits"
	"time"

	"github.com/gossipkit/chitchat-go/failuredetector"
)

// slotDetector is the Engine's failure detector: one failuredetector.Node
// (104 bytes, no pointers) per node state, in a slice indexed by the low 32
// bits of NodeState.slot. A Detector keyed by slot held the same Nodes in a
// map, which cost about 230 bytes per node at 1,000 nodes (issue 13). It
// holds no pointer back to the states (8 bytes per node per observer): the
// Engine walks its states, which know their slots.
//
// Slots: the low 32 bits are a dense index, taken from the free list when a
// state is created (alloc) and given back when it is removed (release); the
// high 32 bits are the creation counter, so that a slot names one state
// even after its index is reused (the never-live queue and the live-nodes
// watch compare slots), and slots sort in creation order (until the counter
// wraps after 2^32 creations, which only perturbs the eviction order of the
// never-live queue).
//
// collect resets an index's Node but keeps the index: only release frees
// it. Suspend (a node that left) keeps the Node's window.
type slotDetector struct {
	model *failuredetector.Model
	nodes []failuredetector.Node
	// tracked has a bit per index that has a window in the sense of Len
	// (a heartbeat was reported or a window ensured).
	tracked []uint64
	free    []uint32
	created uint64
}

func newSlotDetector(cfg failuredetector.Config) (*slotDetector, error) {
	m, err := failuredetector.NewModel(cfg)
	if err != nil {
		return nil, err
	}
	return &slotDetector{model: m}, nil
}

func slotIndex(slot uint64) uint32 { return uint32(slot) }

// alloc returns a slot for a new state, whose Node is in its zero state.
func (d *slotDetector) alloc() uint64 {
	var i uint32
	if n := len(d.free); n > 0 {
		i = d.free[n-1]
		d.free = d.free[:n-1]
	} else {
		i = uint32(len(d.nodes))
		d.nodes = append(d.nodes, failuredetector.Node{})
		if int(i)/64 >= len(d.tracked) {
			d.tracked = append(d.tracked, 0)
		}
	}
	d.created++
	return d.created<<32 | uint64(i)
}

// release frees slot's index for a later state.
func (d *slotDetector) release(slot uint64) {
	i := slotIndex(slot)
	d.reset(i)
	d.free = append(d.free, i)
}

func (d *slotDetector) reset(i uint32) {
	d.nodes[i] = failuredetector.Node{}
	d.tracked[i/64] &^= 1 << (i % 64)
}

func (d *slotDetector) track(i uint32) { d.tracked[i/64] |= 1 << (i % 64) }

func (d *slotDetector) node(slot uint64) *failuredetector.Node { return &d.nodes[slotIndex(slot)] }

// The methods below are failuredetector.Detector's, on slots.

func (d *slotDetector) ReportHeartbeat(slot uint64, now time.Time) {
	d.track(slotIndex(slot))
	d.node(slot).ReportHeartbeat(d.model, now)
}

func (d *slotDetector) EnsureWindow(slot uint64) { d.track(slotIndex(slot)) }

func (d *slotDetector) Mean(slot uint64) (time.Duration, bool) {
	return d.node(slot).Mean(d.model)
}

func (d *slotDetector) Phi(slot uint64, now time.Time) (float64, bool) {
	return d.node(slot).Phi(d.model, now)
}

// PhiBy is slot's phi with the prior capped as bar b says.
func (d *slotDetector) PhiBy(slot uint64, now time.Time, b failuredetector.Bar) (float64, bool) {
	return d.node(slot).PhiBy(d.model, now, b)
}

// UpdateLiveness judges slot at now by bar b (Engine.bar: the configured
// threshold, or another for ring monitors; monitor.go).
func (d *slotDetector) UpdateLiveness(slot uint64, now time.Time, b failuredetector.Bar) {
	d.node(slot).UpdateLivenessBy(d.model, now, b)
}

func (d *slotDetector) MarkDead(slot uint64, now time.Time) { d.node(slot).MarkDead(d.model, now) }

func (d *slotDetector) IsLive(slot uint64) bool { return d.node(slot).IsLive() }

func (d *slotDetector) TimeOfDeath(slot uint64) (time.Time, bool) {
	return d.node(slot).TimeOfDeath(d.model)
}

// Suspend clears slot's verdict and keeps its window (failuredetector's
// Node.ClearVerdict): the node is out of the detector's hands, neither
// live nor dead, so neither judged nor collected, until it is judged again.
func (d *slotDetector) Suspend(slot uint64) { d.node(slot).ClearVerdict() }

// collect resets slot's Node if it has been dead for at least
// DeadNodeGracePeriod at now, and reports whether it did.
func (d *slotDetector) collect(slot uint64, now time.Time) bool {
	n := d.node(slot)
	if !n.IsDead() {
		return false
	}
	if tDeath, _ := n.TimeOfDeath(d.model); !d.model.Config().GracePeriodOver(tDeath, now) {
		return false
	}
	d.reset(slotIndex(slot))
	return true
}

// Len returns the number of slots that have a window.
func (d *slotDetector) Len() int {
	n := 0
	for _, w := range d.tracked {
		n += bits.OnesCount64(w)
	}
	return n
}
