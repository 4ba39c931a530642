package failuredetector

import (
	"math"
	"math/bits"
	"time"
)

// Model is what all windows of one owner share: the [Config], the window
// geometry derived from it, and the time origin of the windows' 64-bit
// timestamps. A [Detector] has one; an owner that embeds [Window] or
// [Node] in per-node structs of its own creates one with [NewModel] and
// passes it to every method of those windows.
//
// A window must always be used with the same Model. A Model must not be
// copied after first use, and is not safe for concurrent use.
//
// Invariant: block == 0 iff size <= exactSlots; otherwise
// size <= block*blockSlots and block*MaxInterval (saturated at 2^64-1 ns)
// <= blockMax*unit, so a rounded block sum always fits blockBits.
type Model struct {
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

	// priorSecs is the prior mean interval in seconds: InitialInterval, or
	// with LearnedPrior the mean learned so far.
	priorSecs float64
	// learned counts the intervals learned, up to priorMemory-priorWeight-1.
	learned int
}

// priorMemory is the weight, in intervals, at which the learned prior stops
// being a running mean and becomes an exponentially weighted one: each new
// interval then moves it by 1/priorMemory of the difference.
const priorMemory = 1024

// NewModel returns a model for cfg, or the [Config.Validate] error.
func NewModel(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newModel(cfg)
	return &m, nil
}

// newModel derives the geometry from a valid cfg.
func newModel(cfg Config) Model {
	m := Model{
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

// Config returns the configuration the model was created with.
func (m *Model) Config() Config { return m.cfg }

// Prior returns the prior mean interval of the additive smoothing:
// InitialInterval, or with LearnedPrior the mean learned so far.
func (m *Model) Prior() time.Duration {
	return time.Duration(m.priorSecs * 1e9)
}

// learn folds a recorded interval of iv nanoseconds into the prior. With
// k intervals learned, k < priorMemory-priorWeight, the prior is exactly
// (priorWeight × InitialInterval + their sum) / (priorWeight + k): the
// same additive smoothing as a window's mean.
func (m *Model) learn(iv uint64) {
	if !m.cfg.LearnedPrior {
		return
	}
	weight := float64(m.learned) + priorWeight + 1
	m.priorSecs += (float64(iv)/1e9 - m.priorSecs) / weight
	if weight < priorMemory {
		m.learned++
	}
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
func (m *Model) offset(t time.Time) int64 {
	if !m.hasEpoch {
		m.epoch, m.hasEpoch = t, true
	}
	return int64(t.Sub(m.epoch))
}

// time returns the time at offset off. It is Equal to the time the offset
// was taken from (unless that was 292 years away from the epoch).
func (m *Model) time(off int64) time.Time {
	return m.epoch.Add(time.Duration(off))
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
