package failuredetector

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// boundedStats is the exact reference window of the differential tests:
// the implementation the package had before the compact window, kept
// unchanged. It keeps the most recent values, at most limit of them, and their
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

// exactWindow is one node's heartbeat history with every interval kept
// (Rust's SamplingWindow): the reference model of [window].
//
// Invariant: stats is non-empty only if hasLast, since an interval needs two
// heartbeats; the converse does not hold after reset.
type exactWindow struct {
	stats         boundedStats
	lastHeartbeat time.Time
	hasLast       bool
	maxInterval   time.Duration
	priorSumSecs  float64 // priorWeight × InitialInterval, in seconds
}

func newExactWindow(size int, maxInterval, initialInterval time.Duration) *exactWindow {
	return &exactWindow{
		stats:        newBoundedStats(size),
		maxInterval:  maxInterval,
		priorSumSecs: priorWeight * initialInterval.Seconds(),
	}
}

// reportHeartbeat records a heartbeat received at now. The first heartbeat
// only sets the reference time; later ones add the interval since the
// previous heartbeat unless it exceeds maxInterval. The reference time moves
// to now in every case, so a discarded long pause is not measured twice.
func (w *exactWindow) reportHeartbeat(now time.Time) {
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
func (w *exactWindow) reset() {
	w.stats.clear()
}

// mean is the additively smoothed mean interval in seconds. It is > 0
// whenever InitialInterval > 0, since intervals are never negative.
func (w *exactWindow) mean() float64 {
	return (w.stats.sum + w.priorSumSecs) / (float64(w.stats.len()) + priorWeight)
}

// phi is the elapsed time since the last heartbeat in mean intervals; ok is
// false while there is no interval to judge by.
func (w *exactWindow) phi(now time.Time) (phi float64, ok bool) {
	if w.stats.len() == 0 || !w.hasLast {
		return 0, false
	}
	elapsed := max(now.Sub(w.lastHeartbeat), 0)
	return elapsed.Seconds() / w.mean(), true
}

// T69
func TestT69_BoundedArrayStats(t *testing.T) {
	const capacity = 5
	s := newBoundedStats(capacity)
	var ref []float64 // reference FIFO of the last `capacity` values
	for i := 1; i <= 9; i++ {
		v := float64(i)
		s.append(v)
		ref = append(ref, v)
		if len(ref) > capacity {
			ref = ref[1:]
		}
		if got, want := s.len(), len(ref); got != want {
			t.Errorf("after %d appends: len = %d, want %d", i, got, want)
		}
		if got, want := s.len() == capacity, i >= capacity; got != want {
			t.Errorf("after %d appends: filled = %v, want %v", i, got, want)
		}
		var want float64
		for _, x := range ref {
			want += x
		}
		if s.sum != want {
			t.Errorf("after %d appends: sum = %v, want %v", i, s.sum, want)
		}
	}
	if got, want := s.sum, 5.0+6+7+8+9; got != want {
		t.Errorf("final sum = %v, want %v", got, want)
	}
	if diff := cmp.Diff(ref, s.ordered()); diff != "" {
		t.Errorf("contents mismatch (-want +got):\n%s", diff)
	}
}

// ordered returns the values oldest first (test helper).
func (s *boundedStats) ordered() []float64 {
	out := make([]float64, 0, len(s.buf))
	if len(s.buf) == s.limit {
		out = append(out, s.buf[s.next:]...)
		return append(out, s.buf[:s.next]...)
	}
	return append(out, s.buf...)
}

// TestBoundedStatsDifferential compares the ring against a naive FIFO over
// random values and capacities, including many revolutions of the ring.
func TestBoundedStatsDifferential(t *testing.T) {
	rng := newRand(t)
	for _, limit := range []int{1, 2, 3, 7, 16, 17, 100, 1000} {
		s := newBoundedStats(limit)
		var ref []float64
		for i := range 20 * limit {
			v := rng.Float64() * 10
			s.append(v)
			ref = append(ref, v)
			if len(ref) > limit {
				ref = ref[1:]
			}
			if i%(limit/3+1) != 0 && i != 20*limit-1 {
				continue
			}
			if diff := cmp.Diff(ref, s.ordered()); diff != "" {
				t.Fatalf("limit %d, append %d: contents mismatch (-want +got):\n%s", limit, i, diff)
			}
			var want float64
			for _, x := range ref {
				want += x
			}
			assertClose(t, "sum", s.sum, want, 1e-9)
		}
	}
}

// The running sum must not drift however many values pass through it.
func TestBoundedStatsSumDoesNotDrift(t *testing.T) {
	rng := newRand(t)
	// Catastrophic cancellation: subtracting the evicted 1e16 alone would
	// leave 0; the per-revolution recompute restores the exact sum.
	tiny := newBoundedStats(2)
	for _, v := range []float64{1e16, 1, 1, 1} {
		tiny.append(v)
	}
	if tiny.sum != 2 {
		t.Errorf("sum after cancellation = %v, want 2", tiny.sum)
	}

	s := newBoundedStats(1000)
	for range 1_000_999 { // end mid-revolution, as far from a recompute as possible
		// Mix magnitudes so that subtract-evicted alone would lose bits.
		s.append(rng.Float64() * math.Pow(10, float64(rng.IntN(6))-3))
	}
	var exact float64
	for _, x := range s.buf {
		exact += x
	}
	assertClose(t, "sum", s.sum, exact, 1e-9*math.Max(1, exact))
}

func TestBoundedStatsGrowsLazily(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		appends int
		maxCap  int
	}{
		{"few values small buffer", 1000, 3, 16},
		{"full window exactly limit", 1000, 5000, 1000},
		{"limit below initial chunk", 5, 100, 5},
		{"limit one", 1, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBoundedStats(tt.limit)
			if cap(s.buf) != 0 {
				t.Fatalf("new stats preallocated %d floats", cap(s.buf))
			}
			for i := range tt.appends {
				s.append(float64(i))
			}
			if got := cap(s.buf); got > tt.maxCap {
				t.Errorf("cap = %d, want <= %d", got, tt.maxCap)
			}
			if got, want := s.len(), min(tt.appends, tt.limit); got != want {
				t.Errorf("len = %d, want %d", got, want)
			}
		})
	}
}

func TestBoundedStatsClearKeepsBuffer(t *testing.T) {
	s := newBoundedStats(4)
	for i := range 7 {
		s.append(float64(i))
	}
	c := cap(s.buf)
	s.clear()
	if s.len() != 0 || s.sum != 0 || s.next != 0 {
		t.Fatalf("after clear: len %d sum %v next %d, want 0 0 0", s.len(), s.sum, s.next)
	}
	if cap(s.buf) != c {
		t.Errorf("clear dropped the buffer: cap %d, want %d", cap(s.buf), c)
	}
	s.append(2)
	s.append(3)
	if diff := cmp.Diff([]float64{2, 3}, s.ordered()); diff != "" {
		t.Errorf("contents after clear mismatch (-want +got):\n%s", diff)
	}
	if s.sum != 5 {
		t.Errorf("sum = %v, want 5", s.sum)
	}
}
