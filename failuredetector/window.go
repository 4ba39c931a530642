package failuredetector

import "time"

// boundedStats keeps the most recent values, at most limit of them, and their
// sum (Rust's BoundedArrayStats).
//
// Invariants: len(buf) <= limit; when len(buf) == limit, buf[next] is the
// oldest value, otherwise next == 0 and values are in arrival order; sum is
// the sum of buf up to rounding error accumulated over fewer than limit
// evictions.
type boundedStats struct {
	// buf grows on demand instead of being allocated at limit up front: a
	// cluster of 1000 nodes with the default window would otherwise pin 8 MB
	// even for nodes that have sent a handful of heartbeats.
	buf   []float64
	limit int
	next  int
	sum   float64
}

func newBoundedStats(limit int) boundedStats {
	return boundedStats{limit: limit}
}

func (s *boundedStats) len() int { return len(s.buf) }

// append adds v, evicting the oldest value if the window is full.
//
// Like Rust, the running sum is maintained by subtracting the evicted value.
// Unlike Rust, it is also recomputed from the buffer once per full
// revolution of the ring (amortized O(1) per append), so rounding error
// cannot accumulate over the lifetime of a long-lived node.
func (s *boundedStats) append(v float64) {
	if len(s.buf) < s.limit {
		if len(s.buf) == cap(s.buf) {
			s.grow()
		}
		s.buf = append(s.buf, v)
		s.sum += v
		return
	}
	s.sum += v - s.buf[s.next]
	s.buf[s.next] = v
	s.next++
	if s.next == s.limit {
		s.next = 0
		s.sum = 0
		for _, x := range s.buf {
			s.sum += x
		}
	}
}

// grow doubles the capacity, never beyond limit, so a full window holds
// exactly limit floats.
func (s *boundedStats) grow() {
	c := min(max(2*cap(s.buf), 16), s.limit)
	buf := make([]float64, len(s.buf), c)
	copy(buf, s.buf)
	s.buf = buf
}

// clear drops every value but keeps the buffer: a dead node is cleared on
// every liveness round, and one that comes back refills the same memory.
func (s *boundedStats) clear() {
	s.buf = s.buf[:0]
	s.next = 0
	s.sum = 0
}

// samplingWindow is one node's heartbeat history (Rust's SamplingWindow).
//
// Invariant: stats is non-empty only if hasLast, since an interval needs two
// heartbeats; the converse does not hold after reset.
type samplingWindow struct {
	stats         boundedStats
	lastHeartbeat time.Time
	hasLast       bool
	maxInterval   time.Duration
	priorSumSecs  float64 // priorWeight × InitialInterval, in seconds
}

func newSamplingWindow(size int, maxInterval, initialInterval time.Duration) *samplingWindow {
	return &samplingWindow{
		stats:        newBoundedStats(size),
		maxInterval:  maxInterval,
		priorSumSecs: priorWeight * initialInterval.Seconds(),
	}
}

// reportHeartbeat records a heartbeat received at now. The first heartbeat
// only sets the reference time; later ones add the interval since the
// previous heartbeat unless it exceeds maxInterval. The reference time moves
// to now in every case, so a discarded long pause is not measured twice.
func (w *samplingWindow) reportHeartbeat(now time.Time) {
	if w.hasLast {
		if interval := max(now.Sub(w.lastHeartbeat), 0); interval <= w.maxInterval {
			w.stats.append(interval.Seconds())
		}
	}
	w.lastHeartbeat = now
	w.hasLast = true
}

// reset forgets the intervals but keeps the last heartbeat time, so the next
// heartbeat after a node returns already yields an interval.
func (w *samplingWindow) reset() {
	w.stats.clear()
}

// mean is the additively smoothed mean interval in seconds. It is > 0
// whenever InitialInterval > 0, since intervals are never negative.
func (w *samplingWindow) mean() float64 {
	return (w.stats.sum + w.priorSumSecs) / (float64(w.stats.len()) + priorWeight)
}

// phi is the elapsed time since the last heartbeat in mean intervals; ok is
// false while there is no interval to judge by.
func (w *samplingWindow) phi(now time.Time) (phi float64, ok bool) {
	if w.stats.len() == 0 || !w.hasLast {
		return 0, false
	}
	elapsed := max(now.Sub(w.lastHeartbeat), 0)
	return elapsed.Seconds() / w.mean(), true
}
