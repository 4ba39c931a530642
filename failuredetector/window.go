package failuredetector

import (
	"encoding/binary"
	"time"
)

// Geometry of the compact window (see "Memory and accuracy" in the package
// doc). A window's data area holds either up to exactSlots intervals in
// whole nanoseconds, or an 8-byte exact head sum followed by blockSlots
// block sums of blockBits bits each.
const (
	exactSlots = 10
	blockSlots = 25
	blockBits  = 24
	blockMax   = 1<<blockBits - 1
	dataBytes  = 8 + blockSlots*blockBits/8 // 83 >= exactSlots*8

	// maxWindow caps SamplingWindowSize so that a window's interval
	// counter fits 32 bits. A larger window behaves as this one: at one
	// heartbeat per 10 ms it takes 124 days to fill.
	maxWindow = 1 << 30
)

// Window is one node's heartbeat history in 96 bytes, whatever the window
// size (Rust's SamplingWindow). Its zero value is an empty window that has
// seen no heartbeat. It holds no pointer, so a map or slice of windows is
// not scanned by the garbage collector. Every method takes the [Model]
// the window belongs to.
//
// Exact mode (size <= exactSlots): data holds the intervals in nanoseconds,
// interval i (counting from the last reset) at slot i mod size.
//
// Block mode: interval i belongs to block i/block. The head block (the one
// being filled) is summed exactly in data[0:8]; each completed block is
// stored as its sum rounded to units, in 24 bits at slot (block index) mod
// blockSlots. When the window is full, the oldest live block is counted
// partially, as (its remaining intervals) × (its mean): evicting one
// interval evicts the block's mean instead of the interval itself.
//
// Invariants: seq is the number of intervals recorded since the last reset,
// less a multiple of the ring period once the window is full (seq stays
// below size + period); seq > 0 only if flagHeard is set; flagHeard only
// if flagHasLast.
type Window struct {
	last int64 // last heartbeat, nanoseconds since the model's epoch
	seq  uint32
	// flags holds flagHasLast and flagHeard; its other bits belong to the
	// [Node] that embeds the window (they fill what would otherwise be
	// padding).
	flags uint8
	data  [dataBytes]byte
}

// ReportHeartbeat records a heartbeat received at now. The first heartbeat
// only sets the reference time; later ones add the interval since the
// previous heartbeat unless it exceeds MaxInterval. The reference time moves
// to now in every case, so a discarded long pause is not measured twice,
// except for a report less than MinInterval after the previous one, which
// is ignored (coalesced with it).
func (w *Window) ReportHeartbeat(m *Model, now time.Time) {
	off := m.offset(now)
	if w.hasLast() {
		iv := since(w.last, off)
		if iv < uint64(m.cfg.MinInterval) {
			return // coalesced with the previous report
		}
		if iv <= uint64(m.cfg.MaxInterval) {
			w.record(m, iv)
			m.learn(iv)
		}
	}
	w.last = off
	w.flags |= flagHasLast | flagHeard
}

// record adds an interval of iv nanoseconds, evicting the oldest one (or
// the oldest block's mean) if the window is full.
func (w *Window) record(m *Model, iv uint64) {
	if m.block == 0 {
		binary.LittleEndian.PutUint64(w.data[8*(uint64(w.seq)%m.size):], iv)
		w.seq++
		if uint64(w.seq) >= 2*m.size {
			w.seq -= uint32(m.size)
		}
		return
	}
	// The head sums consecutive intervals between int64 offsets, so it
	// cannot exceed MaxInt64 - MinInt64 = 2^64-1: it never wraps.
	head := binary.LittleEndian.Uint64(w.data[:8]) + iv
	w.seq++
	if seq := uint64(w.seq); seq%m.block == 0 {
		// The head block is complete: round it to units and store it.
		v := head / m.unit
		if rem := head % m.unit; rem >= m.unit-rem {
			v++
		}
		w.putBlock((seq/m.block-1)%blockSlots, v)
		head = 0
	}
	binary.LittleEndian.PutUint64(w.data[:8], head)
	// Block indices only matter modulo blockSlots, and the live range only
	// relative to seq: once full, shift by whole ring periods.
	if period := m.block * blockSlots; uint64(w.seq) >= m.size+period {
		w.seq -= uint32(period)
	}
}

const (
	// flagHasLast: a heartbeat was reported (last is valid).
	flagHasLast uint8 = 1 << iota
	// flagHeard: a heartbeat was reported since the last reset. A node
	// reset by a death is judged again only once it is heard from.
	flagHeard
	flagsWindow = flagHasLast | flagHeard
)

func (w *Window) hasLast() bool { return w.flags&flagHasLast != 0 }

func (w *Window) putBlock(slot, v uint64) {
	p := w.data[8+3*slot:]
	p[0], p[1], p[2] = byte(v), byte(v>>8), byte(v>>16)
}

func (w *Window) getBlock(slot uint64) uint64 {
	p := w.data[8+3*slot:]
	return uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16
}

// len returns the number of intervals in the window.
func (w *Window) len(m *Model) uint64 { return min(uint64(w.seq), m.size) }

// Intervals returns the number of intervals phi currently averages (at most
// SamplingWindowSize).
func (w *Window) Intervals(m *Model) int { return int(w.len(m)) }

// LastHeartbeat returns the time of the last reported heartbeat (Equal to
// the now passed then), if any.
func (w *Window) LastHeartbeat(m *Model) (time.Time, bool) {
	if !w.hasLast() {
		return time.Time{}, false
	}
	return m.time(w.last), true
}

// sumNanos returns the sum of the intervals in the window, in nanoseconds:
// exact in exact mode; in block mode within the bound stated in the
// package doc.
func (w *Window) sumNanos(m *Model) float64 {
	n := w.len(m)
	if m.block == 0 {
		var sum float64
		for i := range n {
			sum += float64(binary.LittleEndian.Uint64(w.data[8*i:]))
		}
		return sum
	}
	seq := uint64(w.seq)
	head := float64(binary.LittleEndian.Uint64(w.data[:8]))
	hb, ob := seq/m.block, (seq-n)/m.block // head and oldest live block
	if hb == ob {
		return head
	}
	// Blocks ob+1 .. hb-1 are whole: sum their slots, walking the ring.
	var full uint64
	blocks := w.data[8:]
	for i, slot := uint64(0), (ob+1)%blockSlots; i < hb-ob-1; i++ {
		p := blocks[3*slot : 3*slot+3]
		full += uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16
		if slot++; slot == blockSlots {
			slot = 0
		}
	}
	remaining := (ob+1)*m.block - (seq - n) // live intervals of block ob
	oldest := float64(w.getBlock(ob%blockSlots)) * float64(remaining) / float64(m.block)
	return head + (float64(full)+oldest)*float64(m.unit)
}

// Reset forgets the intervals but keeps the last heartbeat time, so the next
// heartbeat after a node returns already yields an interval. Until then
// phi is undefined, with LearnedPrior too.
func (w *Window) Reset() {
	w.seq = 0
	w.flags &^= flagHeard
	w.data = [dataBytes]byte{}
}

// mean is the additively smoothed mean interval in seconds, its prior as
// bar b says (capped at MaxPrior, floored by PriorFloor). It is > 0
// whenever InitialInterval > 0, since intervals are never negative.
//
// The prior weighs as priorWeight intervals, so a cap matters while the
// window holds few: a node judged by its first dozen intervals is judged
// mostly by the prior, which learned the typical peer's intervals, not
// those of a node the owner knows it hears from more often.
func (w *Window) mean(m *Model, b Bar) float64 {
	prior := m.priorSecs
	if b.MaxPrior > 0 {
		prior = min(prior, b.MaxPrior.Seconds())
	}
	mean := (w.sumNanos(m)/1e9 + priorWeight*prior) / (float64(w.len(m)) + priorWeight)
	if b.PriorFloor {
		mean = max(mean, m.priorSecs)
	}
	return mean
}

// judgeable reports whether phi is defined: an interval, or with
// LearnedPrior a heartbeat since the last reset.
func (w *Window) judgeable(m *Model) bool {
	return w.seq != 0 || (w.flags&flagHeard != 0 && m.cfg.LearnedPrior)
}

// Mean returns the mean interval phi divides by (smoothed by the prior);
// ok is false when Phi's is.
func (w *Window) Mean(m *Model) (mean time.Duration, ok bool) {
	if !w.judgeable(m) {
		return 0, false
	}
	return time.Duration(w.mean(m, Bar{}) * 1e9), true
}

// Phi is the time elapsed from the last heartbeat to now in mean
// intervals; ok is false while there is nothing to judge by: no interval,
// and with LearnedPrior no heartbeat since the last reset either (a node
// reset by a death stays without phi until it is heard from again). Phi
// is never NaN and never negative.
func (w *Window) Phi(m *Model, now time.Time) (phi float64, ok bool) {
	return w.PhiBy(m, now, Bar{})
}

// PhiBy is Phi with the mean as bar b says (its MaxPrior and PriorFloor;
// its Threshold is the caller's).
func (w *Window) PhiBy(m *Model, now time.Time, b Bar) (phi float64, ok bool) {
	if !w.judgeable(m) {
		return 0, false
	}
	mean := w.mean(m, b)
	elapsed := since(w.last, m.offset(now))
	return float64(elapsed) / 1e9 / mean, true
}
