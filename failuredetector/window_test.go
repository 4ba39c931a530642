package failuredetector

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var seedFlag = flag.Uint64("seed", 1, "seed for the PCG generator of randomized tests; failing runs log theirs")

// t0 is an arbitrary fixed origin for virtual time.
var t0 = time.Unix(1_700_000_000, 0)

// newRand returns a generator seeded from -seed and logs the seed so a
// failing run can be replayed.
func newRand(tb testing.TB) *rand.Rand {
	tb.Helper()
	tb.Logf("seed=%d (replay with -seed=%d)", *seedFlag, *seedFlag)
	return rand.New(rand.NewPCG(*seedFlag, *seedFlag^0x9e3779b97f4a7c15))
}

func assertClose(tb testing.TB, what string, got, want, tol float64) {
	tb.Helper()
	if math.IsNaN(got) || math.Abs(got-want) >= tol {
		tb.Errorf("%s = %.17g, want %.17g (|Δ| < %g)", what, got, want, tol)
	}
}

// T68
func TestT68_SamplingWindow(t *testing.T) {
	const tol = 1e-12
	w := newSamplingWindow(10, 5*time.Second, 2*time.Second)
	now := t0
	w.reportHeartbeat(now)
	if _, ok := w.phi(now); ok {
		t.Fatal("phi defined after a single heartbeat")
	}

	now = now.Add(3 * time.Second)
	w.reportHeartbeat(now)
	mean := (3.0 + 2.0*5) / (1 + 5) // intervals [3], prior 2 s × 5
	phiAt := func(what string, want float64) {
		t.Helper()
		got, ok := w.phi(now)
		if !ok {
			t.Fatalf("%s: phi undefined", what)
		}
		assertClose(t, what, got, want, tol)
	}
	phiAt("phi +0s", 0/mean)

	now = now.Add(time.Second)
	phiAt("phi +1s", 1/mean)

	// 6 s since the last heartbeat > max 5 s: dropped, but the clock moves.
	now = now.Add(5 * time.Second)
	w.reportHeartbeat(now)
	now = now.Add(2 * time.Second)
	phiAt("phi after dropped interval", 2/mean)

	// Reset keeps the last heartbeat; 102 s is dropped, leaving no interval.
	now = now.Add(100 * time.Second)
	w.reset()
	w.reportHeartbeat(now)
	if phi, ok := w.phi(now); ok {
		t.Fatalf("phi after reset and dropped interval = %v, want undefined", phi)
	}

	now = now.Add(2 * time.Second)
	w.reportHeartbeat(now)
	now = now.Add(4 * time.Second)
	phiAt("phi after reset", 4/((2.0+10)/6)) // = 2.0
	phiAt("phi after reset (literal)", 2.0)
}

func TestSamplingWindowMaxIntervalIsInclusive(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		wantN    int
	}{
		{"below", 10*time.Second - time.Nanosecond, 1},
		{"equal", 10 * time.Second, 1},
		{"above", 10*time.Second + time.Nanosecond, 0},
		{"zero", 0, 1},
		{"negative clamps to zero", -time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSamplingWindow(4, 10*time.Second, 5*time.Second)
			w.reportHeartbeat(t0)
			w.reportHeartbeat(t0.Add(tt.interval))
			if got := w.stats.len(); got != tt.wantN {
				t.Errorf("intervals kept = %d, want %d", got, tt.wantN)
			}
			if w.stats.sum < 0 {
				t.Errorf("sum = %v, want >= 0", w.stats.sum)
			}
			if got, want := w.lastHeartbeat, t0.Add(tt.interval); !got.Equal(want) {
				t.Errorf("lastHeartbeat = %v, want %v", got, want)
			}
		})
	}
}

func TestSamplingWindowPhiBeforeLastHeartbeatIsZero(t *testing.T) {
	w := newSamplingWindow(4, 10*time.Second, 5*time.Second)
	w.reportHeartbeat(t0)
	w.reportHeartbeat(t0.Add(time.Second))
	phi, ok := w.phi(t0)
	if !ok || phi != 0 {
		t.Errorf("phi(before last heartbeat) = %v, %v; want 0, true", phi, ok)
	}
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
