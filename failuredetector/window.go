package failuredetector

import (
	"encoding/binary"
	"math"
	"math/bits"
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

// model is what every window of one detector shares: the configuration,
// the window geometry derived from it, and the time origin of the
// windows' 64-bit timestamps.
//
// Invariant: block == 0 iff size <= exactSlots; otherwise
// size <= block*blockSlots and block*MaxInterval (saturated at 2^64-1 ns)
// <= blockMax*unit, so a rounded block sum always fits blockBits.
type model struct {
	cfg   Config
	size  uint64 // effective window size: min(SamplingWindowSize, maxWindow)
	block uint64 // intervals per block; 0 when intervals are stored exactly
	unit  uint64 // nanoseconds per unit of a stored block sum

	// epoch is the origin of the windows' timestamps: the first time the
	// model was asked to store. Offsets from it keep the monotonic clock
	// reading of the times passed in (time.Time.Sub uses it), in 8 bytes
	// instead of 24 and without a pointer the garbage collector must scan.
	epoch    time.Time
	hasEpoch bool

	// priorSecs is the prior mean interval in seconds (InitialInterval).
	priorSecs float64
}

// newModel derives the geometry from a valid cfg.
func newModel(cfg Config) model {
	m := model{
		cfg:       cfg,
		size:      uint64(min(cfg.SamplingWindowSize, maxWindow)),
		priorSecs: cfg.InitialInterval.Seconds(),
	}
	if m.size <= exactSlots {
		return m
	}
	m.block = (m.size + blockSlots - 1) / blockSlots
	hi, lo := bits.Mul64(m.block, uint64(cfg.MaxInterval))
	if hi != 0 {
		lo = math.MaxUint64 // no block sum exceeds it (see record)
	}
	need := lo / blockMax
	if lo%blockMax != 0 {
		need++
	}
	m.unit = unitFor(need)
	return m
}

// unitFor returns the smallest number of the 1-2-5 series (1, 2, 5, 10, 20,
// ... nanoseconds) that is >= need. Round units keep block sums of whole
// milliseconds or microseconds exact. need <= 2^40, so this terminates well
// before overflow.
func unitFor(need uint64) uint64 {
	for u := uint64(1); ; u *= 10 {
		for _, f := range [...]uint64{1, 2, 5} {
			if f*u >= need {
				return f * u
			}
		}
	}
}

// offset returns t in nanoseconds since the epoch, which it sets on first
// use.
func (m *model) offset(t time.Time) int64 {
	if !m.hasEpoch {
		m.epoch, m.hasEpoch = t, true
	}
	return int64(t.Sub(m.epoch))
}

// since returns the nanoseconds from the offset from to the offset to, or
// 0 if to is not after from. The unsigned difference of two int64 values
// in order is exact.
func since(from, to int64) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to) - uint64(from)
}

// window is one node's heartbeat history in 96 bytes, whatever the window
// size (Rust's SamplingWindow).
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
// below size + period); seq > 0 only if hasLast.
type window struct {
	last    int64 // last heartbeat, nanoseconds since the model's epoch
	seq     uint32
	hasLast bool
	data    [dataBytes]byte
}

// reportHeartbeat records a heartbeat received at now. The first heartbeat
// only sets the reference time; later ones add the interval since the
// previous heartbeat unless it exceeds MaxInterval. The reference time moves
// to now in every case, so a discarded long pause is not measured twice.
func (w *window) reportHeartbeat(m *model, now time.Time) {
	off := m.offset(now)
	if w.hasLast {
		if iv := since(w.last, off); iv <= uint64(m.cfg.MaxInterval) {
			w.record(m, iv)
		}
	}
	w.last, w.hasLast = off, true
}

// record adds an interval of iv nanoseconds, evicting the oldest one (or
// the oldest block's mean) if the window is full.
func (w *window) record(m *model, iv uint64) {
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

func (w *window) putBlock(slot, v uint64) {
	p := w.data[8+3*slot:]
	p[0], p[1], p[2] = byte(v), byte(v>>8), byte(v>>16)
}

func (w *window) getBlock(slot uint64) uint64 {
	p := w.data[8+3*slot:]
	return uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16
}

// len returns the number of intervals in the window.
func (w *window) len(m *model) uint64 { return min(uint64(w.seq), m.size) }

// sumNanos returns the sum of the intervals in the window, in nanoseconds:
// exact in exact mode; in block mode within the bound stated in the
// package doc.
func (w *window) sumNanos(m *model) float64 {
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
	var full uint64
	for j := ob + 1; j < hb; j++ {
		full += w.getBlock(j % blockSlots)
	}
	remaining := (ob+1)*m.block - (seq - n) // live intervals of block ob
	oldest := float64(w.getBlock(ob%blockSlots)) * float64(remaining) / float64(m.block)
	return head + (float64(full)+oldest)*float64(m.unit)
}

// reset forgets the intervals but keeps the last heartbeat time, so the next
// heartbeat after a node returns already yields an interval.
func (w *window) reset() {
	w.seq = 0
	w.data = [dataBytes]byte{}
}

// mean is the additively smoothed mean interval in seconds. It is > 0
// whenever InitialInterval > 0, since intervals are never negative.
func (w *window) mean(m *model) float64 {
	return (w.sumNanos(m)/1e9 + priorWeight*m.priorSecs) / (float64(w.len(m)) + priorWeight)
}

// phi is the elapsed time since the last heartbeat in mean intervals; ok is
// false while there is no interval to judge by.
func (w *window) phi(m *model, now time.Time) (phi float64, ok bool) {
	if !w.hasLast || w.seq == 0 {
		return 0, false
	}
	elapsed := since(w.last, m.offset(now))
	return float64(elapsed) / 1e9 / w.mean(m), true
}
