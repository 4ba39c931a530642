package failuredetector

import (
	"flag"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
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

// testWindow is a window with a model of its own, for tests of one window.
type testWindow struct {
	m Model
	w Window
}

func newTestWindow(tb fataler, size int, maxInterval, initialInterval time.Duration) *testWindow {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.SamplingWindowSize, cfg.MaxInterval, cfg.InitialInterval = size, maxInterval, initialInterval
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("invalid test config: %v", err)
	}
	return &testWindow{m: newModel(cfg)}
}

func (t *testWindow) reportHeartbeat(now time.Time)            { t.w.ReportHeartbeat(&t.m, now) }
func (t *testWindow) phi(now time.Time) (phi float64, ok bool) { return t.w.Phi(&t.m, now) }
func (t *testWindow) reset()                                   { t.w.Reset() }
func (t *testWindow) len() int                                 { return int(t.w.len(&t.m)) }
func (t *testWindow) sum() float64                             { return t.w.sumNanos(&t.m) / 1e9 }
func (t *testWindow) lastHeartbeat() time.Time                 { return t.m.epoch.Add(time.Duration(t.w.last)) }

func assertClose(tb testing.TB, what string, got, want, tol float64) {
	tb.Helper()
	if math.IsNaN(got) || math.Abs(got-want) >= tol {
		tb.Errorf("%s = %.17g, want %.17g (|Δ| < %g)", what, got, want, tol)
	}
}

// T68
func TestT68_SamplingWindow(t *testing.T) {
	const tol = 1e-12
	w := newTestWindow(t, 10, 5*time.Second, 2*time.Second)
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
			w := newTestWindow(t, 4, 10*time.Second, 5*time.Second)
			w.reportHeartbeat(t0)
			w.reportHeartbeat(t0.Add(tt.interval))
			if got := w.len(); got != tt.wantN {
				t.Errorf("intervals kept = %d, want %d", got, tt.wantN)
			}
			if want := float64(max(tt.interval, 0)) / 1e9 * float64(tt.wantN); w.sum() != want {
				t.Errorf("sum = %v, want %v", w.sum(), want)
			}
			if got, want := w.lastHeartbeat(), t0.Add(tt.interval); !got.Equal(want) {
				t.Errorf("lastHeartbeat = %v, want %v", got, want)
			}
		})
	}
}

func TestSamplingWindowPhiBeforeLastHeartbeatIsZero(t *testing.T) {
	w := newTestWindow(t, 4, 10*time.Second, 5*time.Second)
	w.reportHeartbeat(t0)
	w.reportHeartbeat(t0.Add(time.Second))
	phi, ok := w.phi(t0)
	if !ok || phi != 0 {
		t.Errorf("phi(before last heartbeat) = %v, %v; want 0, true", phi, ok)
	}
}

func TestModelGeometry(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		maxInterval time.Duration
		wantSize    uint64
		wantBlock   uint64 // 0: exact mode
		wantUnit    uint64 // ns
	}{
		{"one interval is exact", 1, 10 * time.Second, 1, 0, 0},
		{"ten intervals are exact", 10, 10 * time.Second, 10, 0, 0},
		// 1 × 10 s / (2^24-1) = 597 ns, rounded up the 1-2-5 series.
		{"eleven intervals have blocks of one", 11, 10 * time.Second, 11, 1, 1000},
		{"25 intervals have blocks of one", 25, 10 * time.Second, 25, 1, 1000},
		{"26 intervals have blocks of two", 26, 10 * time.Second, 26, 2, 2000},
		// 40 × 10 s / (2^24-1) = 23,842 ns.
		{"default", 1000, 10 * time.Second, 1000, 40, 50_000},
		{"default with max interval 1s", 1000, time.Second, 1000, 40, 5000},
		{"1001 intervals", 1001, 10 * time.Second, 1001, 41, 50_000},
		// ceil(2^30/25) = 42,949,673 × 10 s / (2^24-1) = 25.6 s.
		{"huge window is capped", 1 << 40, 10 * time.Second, 1 << 30, 42_949_673, 50_000_000_000},
		// 40 × MaxInt64 ns overflows: the cap is 2^64-1 ns, / (2^24-1) = 1.0995e12.
		{"huge max interval", 1000, math.MaxInt64, 1000, 40, 2_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SamplingWindowSize, cfg.MaxInterval = tt.size, tt.maxInterval
			m := newModel(cfg)
			got := [3]uint64{m.size, m.block, m.unit}
			if want := [3]uint64{tt.wantSize, tt.wantBlock, tt.wantUnit}; got != want {
				t.Errorf("size, block, unit = %v, want %v", got, want)
			}
			if m.block != 0 {
				if n := (m.size-1)/m.block + 1; n > blockSlots {
					t.Errorf("%d live full blocks possible, only %d slots", n, blockSlots)
				}
				hi, lo := bits.Mul64(m.block, uint64(cfg.MaxInterval))
				if hi == 0 && lo > blockMax*m.unit {
					t.Errorf("a full block of %d × %v does not fit %d units of %d ns", m.block, cfg.MaxInterval, blockMax, m.unit)
				}
			}
		})
	}
}

// TestWindowBlockEviction follows a window of 26 (blocks of 2) through the
// eviction of its oldest block, against hand-computed sums.
func TestWindowBlockEviction(t *testing.T) {
	w := newTestWindow(t, 26, 10*time.Second, 5*time.Second)
	now := t0
	w.reportHeartbeat(now)
	// Block 0 holds 1 s and 3 s; 24 intervals of 2 s follow: 26 intervals, 52 s.
	for _, iv := range append([]time.Duration{time.Second, 3 * time.Second}, slices.Repeat([]time.Duration{2 * time.Second}, 24)...) {
		now = now.Add(iv)
		w.reportHeartbeat(now)
	}
	steps := []struct {
		name      string
		interval  time.Duration
		wantSum   float64 // compact
		exactSum  float64 // what an exact window would hold
		wantCount int
	}{
		// Evicting 1 s exactly would give 53 s; the block's mean, 2 s, is
		// evicted instead: off by r(b-r)/b × (3-1) = 1 s.
		{"half the oldest block evicted", 2 * time.Second, 52, 53, 26},
		// The rest of block 0 goes: exact again at the block boundary.
		{"oldest block fully evicted", 2 * time.Second, 52, 52, 26},
		{"next block starts evicting", 4 * time.Second, 54, 54, 26},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now = now.Add(st.interval)
			w.reportHeartbeat(now)
			if got := w.sum(); got != st.wantSum {
				t.Errorf("sum = %v s, want %v s (exact window: %v s)", got, st.wantSum, st.exactSum)
			}
			if got := w.len(); got != st.wantCount {
				t.Errorf("len = %d, want %d", got, st.wantCount)
			}
			assertClose(t, "phi", mustPhiOf(t, w, now.Add(time.Second)), 1/((st.wantSum+25)/31), 1e-12)
		})
	}
}

func mustPhiOf(tb testing.TB, w *testWindow, now time.Time) float64 {
	tb.Helper()
	phi, ok := w.phi(now)
	if !ok {
		tb.Fatal("phi undefined")
	}
	return phi
}

// TestWindowLongRunStaysExactAtBoundaries runs many ring periods through
// windows of every mode: the interval counter stays bounded, and whenever
// the oldest live block is whole, the sum equals the exact window's
// (intervals are whole milliseconds, so no block rounds).
func TestWindowLongRunStaysExactAtBoundaries(t *testing.T) {
	rng := newRand(t)
	tests := []struct {
		name string
		size int
	}{
		{"exact mode", 7},
		{"blocks of one", 20},
		{"blocks of two", 26},
		{"default", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWindow(t, tt.size, 10*time.Second, 5*time.Second)
			ref := newExactWindow(tt.size, 10*time.Second, 5*time.Second)
			now := t0
			w.reportHeartbeat(now)
			ref.reportHeartbeat(now)
			limit := uint64(2 * tt.size)
			if w.m.block != 0 {
				limit = w.m.size + w.m.block*blockSlots
			}
			checked := 0
			for i := range 20 * (tt.size + blockSlots) {
				now = now.Add(time.Duration(1+rng.IntN(3000)) * time.Millisecond)
				w.reportHeartbeat(now)
				ref.reportHeartbeat(now)
				if uint64(w.w.seq) >= limit {
					t.Fatalf("after %d intervals seq = %d, want < %d", i+1, w.w.seq, limit)
				}
				if total := uint64(i + 1); w.m.block == 0 || (total-min(total, w.m.size))%w.m.block == 0 {
					assertClose(t, "sum", w.sum(), ref.stats.sum, 1e-9)
					checked++
				}
			}
			if checked < 20 {
				t.Errorf("only %d boundaries checked", checked)
			}
		})
	}
}

// TestWindowHugeIntervals drives a window with a MaxInterval of 292 years
// to the end of the int64 offsets: the head sum of a block, a difference of
// offsets, reaches 2^63 ns without wrapping, and rounds into 24 bits.
func TestWindowHugeIntervals(t *testing.T) {
	w := newTestWindow(t, 1000, math.MaxInt64, 5*time.Second)
	now := t0
	w.reportHeartbeat(now)
	const iv = time.Duration(1 << 62) // 146 years; the offsets saturate after two
	for range 40 {
		now = now.Add(iv)
		w.reportHeartbeat(now)
	}
	// One block of 40 intervals summing to 2^63-1 ns, in units of 2e12 ns.
	if got, want := w.w.getBlock(0), uint64(4_611_686); got != want {
		t.Errorf("block 0 = %d units, want %d", got, want)
	}
	if got, want := w.sum(), 4_611_686*2e12/1e9; got != want {
		t.Errorf("sum = %v s, want %v s", got, want)
	}
}

// TestWindowFootprint reports the memory a node's window costs, after 2,000
// heartbeats, against the exact window it replaces.
func TestWindowFootprint(t *testing.T) {
	if got := unsafe.Sizeof(Window{}); got != 96 {
		t.Errorf("window is %d bytes, want 96", got)
	}
	nodes, reports := 10_000, footprintReports()
	cfg := DefaultConfig()
	compact := heapPerNode(t, nodes, func() any {
		m := newModel(cfg)
		ws := make([]Window, nodes)
		now := t0
		for range reports {
			now = now.Add(300 * time.Millisecond)
			for i := range ws {
				ws[i].ReportHeartbeat(&m, now)
			}
		}
		return ws
	})
	exact := heapPerNode(t, nodes/10, func() any {
		ws := make([]*exactWindow, nodes/10)
		for i := range ws {
			ws[i] = newExactWindow(cfg.SamplingWindowSize, cfg.MaxInterval, cfg.InitialInterval)
		}
		now := t0
		for range reports {
			now = now.Add(300 * time.Millisecond)
			for _, w := range ws {
				w.reportHeartbeat(now)
			}
		}
		return ws
	})
	t.Logf("heap bytes per window after %d reports: compact %.0f, exact %.0f", reports, compact, exact)
	// The heap figure is the 96 bytes give or take the test binary's own
	// churn (a few bytes per node at 10,000 nodes).
	if compact > 110 {
		t.Errorf("compact window: %.0f heap bytes per node, want about 96", compact)
	}
}

// heapPerNode returns the live heap that build's result holds, per node.
func heapPerNode(tb testing.TB, nodes int, build func() any) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(nodes)
}

func TestWindowReportDoesNotAllocate(t *testing.T) {
	w := newTestWindow(t, 1000, 10*time.Second, 5*time.Second)
	now := t0
	allocs := testing.AllocsPerRun(5000, func() {
		now = now.Add(300 * time.Millisecond)
		w.reportHeartbeat(now)
		w.phi(now)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per report, want 0", allocs)
	}
}

// Reports closer than MinInterval are coalesced: a node heard from several
// peers within a round keeps a mean of about a round, not of the gaps
// between those peers.
func TestMinIntervalCoalescesReports(t *testing.T) {
	cfg := DefaultConfig()
	cfg.InitialInterval = time.Second
	cfg.MinInterval = 500 * time.Millisecond
	m, err := NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var w Window
	t0 := time.Unix(1_000, 0)
	for round := range 20 {
		at := t0.Add(time.Duration(round) * time.Second)
		for k := range 5 { // heard from five peers within 40 ms
			w.ReportHeartbeat(m, at.Add(time.Duration(k)*10*time.Millisecond))
		}
	}
	if got := w.Intervals(m); got != 19 {
		t.Errorf("%d intervals recorded, want 19 (one per round)", got)
	}
	last := t0.Add(19 * time.Second)
	phi, ok := w.Phi(m, last.Add(time.Second))
	if !ok || phi > 1.05 || phi < 0.95 {
		t.Errorf("phi one round after the last report = %v (%v), want about 1", phi, ok)
	}
	bad := cfg
	bad.MinInterval = -time.Second
	if bad.Validate() == nil {
		t.Error("a negative MinInterval was accepted")
	}
}
