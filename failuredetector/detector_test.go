package failuredetector

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func newDetector[K comparable](tb testing.TB, cfg Config) *Detector[K] {
	tb.Helper()
	d, err := New[K](cfg)
	if err != nil {
		tb.Fatalf("New() error = %v", err)
	}
	return d
}

func sorted[K cmp.Ordered](ids []K) []K {
	slices.Sort(ids)
	return ids
}

// checkSets compares the live and dead sets with the expected ones.
func checkSets[K cmp.Ordered](tb testing.TB, d *Detector[K], wantLive, wantDead []K) {
	tb.Helper()
	if diff := gocmp.Diff(wantLive, sorted(d.LiveNodes())); diff != "" {
		tb.Errorf("LiveNodes() mismatch (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(wantDead, sorted(d.DeadNodes())); diff != "" {
		tb.Errorf("DeadNodes() mismatch (-want +got):\n%s", diff)
	}
}

func mustPhi[K comparable](tb testing.TB, d *Detector[K], id K, now time.Time) float64 {
	tb.Helper()
	phi, ok := d.Phi(id, now)
	if !ok {
		tb.Fatalf("Phi(%v) undefined", id)
	}
	return phi
}

// T63
func TestT63_DoesNotSeeANodeAsAliveWithASingleHeartbeat(t *testing.T) {
	d := newDetector[string](t, DefaultConfig())
	d.ReportHeartbeat("node-1", t0)
	d.UpdateLiveness("node-1", t0)
	checkSets(t, d, nil, []string{"node-1"})
}

// T64
func TestT64_FailureDetector(t *testing.T) {
	rng := newRand(t)
	d := newDetector[int](t, DefaultConfig())
	nodes := []int{10_001, 10_002, 10_003}
	now := t0
	for range 2001 {
		now = now.Add(time.Duration(1+rng.IntN(2)) * time.Second)
		d.ReportHeartbeat(nodes[rng.IntN(len(nodes))], now)
	}
	for _, id := range nodes {
		d.UpdateLiveness(id, now)
	}
	checkSets(t, d, nodes, nil)
	if got := d.GarbageCollect(now); len(got) != 0 {
		t.Errorf("GarbageCollect() with all live = %v, want none", got)
	}

	// Stop reporting heartbeats.
	now = now.Add(50 * time.Second)
	for _, id := range nodes {
		d.UpdateLiveness(id, now)
	}
	checkSets(t, d, nil, nodes)
	if got := d.GarbageCollect(now); len(got) != 0 {
		t.Errorf("GarbageCollect() right after death = %v, want none", got)
	}

	// Past the grace period.
	now = now.Add(25 * time.Hour)
	if diff := gocmp.Diff(nodes, sorted(d.GarbageCollect(now))); diff != "" {
		t.Errorf("GarbageCollect() after grace mismatch (-want +got):\n%s", diff)
	}
	checkSets(t, d, nil, nil)
	if got := d.Len(); got != 0 {
		t.Errorf("Len() after GC = %d, want 0", got)
	}
}

// T65
func TestT65_NodeStateFromLiveToDownToLive(t *testing.T) {
	rng := newRand(t)
	d := newDetector[string](t, DefaultConfig())
	const id = "node-10001"
	now := t0
	heartbeats := func(n int) {
		for range n {
			now = now.Add(time.Duration(1+rng.IntN(2)) * time.Second)
			d.ReportHeartbeat(id, now)
		}
	}

	heartbeats(2001)
	d.UpdateLiveness(id, now)
	checkSets(t, d, []string{id}, nil)

	now = now.Add(20 * time.Second)
	d.UpdateLiveness(id, now)
	checkSets(t, d, nil, []string{id})

	heartbeats(501)
	d.UpdateLiveness(id, now)
	checkSets(t, d, []string{id}, nil)
}

// T66
func TestT66_AdditiveSmoothingPredominantInTheBeginning(t *testing.T) {
	const tol = 1e-12
	d := newDetector[string](t, DefaultConfig())
	const id = "node-10001"
	now := t0
	d.ReportHeartbeat(id, now)
	now = now.Add(time.Second)
	for range 5 {
		now = now.Add(200 * time.Millisecond)
		d.ReportHeartbeat(id, now)
	}
	// Intervals 1.2, 0.2 × 4: sum 2, n 5; the prior (5 s × 5) dominates.
	assertClose(t, "mean", meanOf(d, id), (2.0+25)/10, tol)

	now = now.Add(6 * time.Second)
	assertClose(t, "phi at +6s", mustPhi(t, d, id, now), 6/2.7, tol)
	d.UpdateLiveness(id, now)
	checkSets(t, d, []string{id}, nil)

	now = now.Add(40 * time.Second)
	assertClose(t, "phi at +46s", mustPhi(t, d, id, now), 46/2.7, tol)
	d.UpdateLiveness(id, now)
	checkSets(t, d, nil, []string{id})
}

// T67
func TestT67_AdditiveSmoothingEffectFadesOff(t *testing.T) {
	const tol = 1e-9
	d := newDetector[string](t, DefaultConfig())
	const id = "node-10001"
	now := t0
	d.ReportHeartbeat(id, now)
	for range 1000 {
		now = now.Add(200 * time.Millisecond)
		d.ReportHeartbeat(id, now)
	}
	mean := (1000*0.2 + 25) / 1005
	assertClose(t, "mean", meanOf(d, id), mean, tol)

	now = now.Add(6 * time.Second)
	assertClose(t, "phi at +6s", mustPhi(t, d, id, now), 6/mean, tol) // ≈ 26.8
	d.UpdateLiveness(id, now)
	checkSets(t, d, nil, []string{id})
}

func TestTimeOfDeathIsNotRefreshed(t *testing.T) {
	d := newDetector[string](t, DefaultConfig())
	d.ReportHeartbeat("a", t0)
	d.UpdateLiveness("a", t0)
	for _, dt := range []time.Duration{time.Second, time.Hour, 23 * time.Hour} {
		d.UpdateLiveness("a", t0.Add(dt))
		got, ok := d.TimeOfDeath("a")
		if !ok || !got.Equal(t0) {
			t.Errorf("TimeOfDeath after update at +%v = %v, %v; want %v, true", dt, got, ok, t0)
		}
	}
	if got := d.GarbageCollect(t0.Add(24 * time.Hour)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("GarbageCollect(t0+24h) = %v, want [a]: grace counts from the first death", got)
	}
	if _, ok := d.TimeOfDeath("a"); ok {
		t.Error("TimeOfDeath defined after garbage collection")
	}
}

func TestDeadWindowResetKeepsLastHeartbeat(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PhiThreshold = 0.5
	d := newDetector[string](t, cfg)
	d.ReportHeartbeat("a", t0)
	d.ReportHeartbeat("a", t0.Add(2*time.Second)) // mean (2+25)/6 = 4.5

	now := t0.Add(5 * time.Second) // phi 3/4.5 > 0.5
	d.UpdateLiveness("a", now)
	checkSets(t, d, nil, []string{"a"})
	if phi, ok := d.Phi("a", now); ok {
		t.Fatalf("Phi after death = %v, want undefined (window reset)", phi)
	}

	// One heartbeat suffices: the interval is measured from the heartbeat
	// before the death (4 s), not from nothing.
	now = t0.Add(6 * time.Second)
	d.ReportHeartbeat("a", now)
	if w := d.nodes["a"].Window; w.len(&d.model) != 1 || w.sumNanos(&d.model) != 4e9 {
		t.Fatalf("intervals after return: %d summing to %vns, want one of 4s", w.len(&d.model), w.sumNanos(&d.model))
	}
	d.UpdateLiveness("a", now)
	checkSets(t, d, []string{"a"}, nil)
	if _, ok := d.TimeOfDeath("a"); ok {
		t.Error("TimeOfDeath still defined after coming back")
	}
}

func TestComingBackRestartsGraceClock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeadNodeGracePeriod = time.Hour
	d := newDetector[string](t, cfg)

	tDeath1 := t0
	d.ReportHeartbeat("a", tDeath1)
	d.UpdateLiveness("a", tDeath1) // single heartbeat: dead

	back := tDeath1.Add(40 * time.Minute)
	d.ReportHeartbeat("a", back.Add(-time.Second))
	d.ReportHeartbeat("a", back)
	d.UpdateLiveness("a", back)
	checkSets(t, d, []string{"a"}, nil)

	tDeath2 := back.Add(10 * time.Minute)
	d.UpdateLiveness("a", tDeath2)
	if got, _ := d.TimeOfDeath("a"); !got.Equal(tDeath2) {
		t.Fatalf("TimeOfDeath after second death = %v, want %v", got, tDeath2)
	}
	if got := d.GarbageCollect(tDeath1.Add(time.Hour)); len(got) != 0 {
		t.Errorf("GarbageCollect(first death + grace) = %v, want none", got)
	}
	if d.IsScheduledForDeletion("a", tDeath1.Add(time.Hour)) {
		t.Error("scheduled for deletion based on the first death")
	}
	if got := d.GarbageCollect(tDeath2.Add(time.Hour)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("GarbageCollect(second death + grace) = %v, want [a]", got)
	}
}

func TestScheduledForDeletionBoundary(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
	}{
		{"default 24h", 24 * time.Hour},
		{"odd nanoseconds", 3 * time.Nanosecond},
		{"one nanosecond", time.Nanosecond},
		{"odd seconds", 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DeadNodeGracePeriod = tt.grace
			d := newDetector[string](t, cfg)
			d.EnsureWindow("a")
			d.UpdateLiveness("a", t0)
			d.ReportHeartbeat("live", t0.Add(-time.Second))
			d.ReportHeartbeat("live", t0)
			d.UpdateLiveness("live", t0)

			// Scheduled iff 2 × (now − tDeath) > grace, computed exactly.
			for e := max(tt.grace/2-2, 0); e <= tt.grace/2+2; e++ {
				now := t0.Add(e)
				want := 2*e > tt.grace
				if got := d.IsScheduledForDeletion("a", now); got != want {
					t.Errorf("IsScheduledForDeletion at death+%v = %v, want %v", e, got, want)
				}
				var wantIDs []string
				if want {
					wantIDs = []string{"a"}
				}
				if diff := gocmp.Diff(wantIDs, d.ScheduledForDeletionNodes(now)); diff != "" {
					t.Errorf("ScheduledForDeletionNodes at death+%v mismatch (-want +got):\n%s", e, diff)
				}
			}
			half := t0.Add(tt.grace / 2)
			if tt.grace%2 == 0 && d.IsScheduledForDeletion("a", half) {
				t.Error("scheduled exactly at grace/2")
			}
			if !d.IsScheduledForDeletion("a", half.Add(time.Nanosecond)) {
				t.Error("not scheduled 1ns after grace/2")
			}
			if d.IsScheduledForDeletion("live", t0.Add(100*tt.grace)) {
				t.Error("a live node is scheduled for deletion")
			}
			if d.IsScheduledForDeletion("unknown", t0.Add(100*tt.grace)) {
				t.Error("an unknown node is scheduled for deletion")
			}
		})
	}
}

func TestGarbageCollectBoundary(t *testing.T) {
	cfg := DefaultConfig()
	d := newDetector[string](t, cfg)
	d.ReportHeartbeat("a", t0.Add(-time.Minute))
	d.UpdateLiveness("a", t0) // dead: single heartbeat
	d.UpdateLiveness("b", t0) // dead without a window
	if got := d.Len(); got != 1 {
		t.Fatalf("Len() = %d, want 1", got)
	}

	if got := d.GarbageCollect(t0.Add(cfg.DeadNodeGracePeriod - time.Nanosecond)); len(got) != 0 {
		t.Fatalf("GarbageCollect 1ns before grace = %v, want none", got)
	}
	if !d.IsDead("a") || !d.IsDead("b") {
		t.Fatal("nodes no longer dead after an empty GarbageCollect")
	}
	got := sorted(d.GarbageCollect(t0.Add(cfg.DeadNodeGracePeriod)))
	if diff := gocmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("GarbageCollect exactly at grace mismatch (-want +got):\n%s", diff)
	}
	checkSets(t, d, nil, nil)
	if d.Len() != 0 {
		t.Errorf("Len() after GC = %d, want 0 (window deleted)", d.Len())
	}
	if _, ok := d.Phi("a", t0); ok {
		t.Error("Phi defined for a collected node")
	}
}

func TestEnsureWindow(t *testing.T) {
	t.Run("then UpdateLiveness is dead", func(t *testing.T) {
		d := newDetector[string](t, DefaultConfig())
		d.EnsureWindow("a")
		if d.Len() != 1 {
			t.Fatalf("Len() = %d, want 1", d.Len())
		}
		if _, ok := d.Phi("a", t0); ok {
			t.Error("Phi defined for an empty window")
		}
		d.UpdateLiveness("a", t0)
		checkSets(t, d, nil, []string{"a"})
	})
	t.Run("keeps an existing window", func(t *testing.T) {
		d := newDetector[string](t, DefaultConfig())
		d.ReportHeartbeat("a", t0)
		d.ReportHeartbeat("a", t0.Add(time.Second))
		d.EnsureWindow("a")
		if _, ok := d.Phi("a", t0.Add(time.Second)); !ok {
			t.Error("EnsureWindow replaced an existing window")
		}
		if d.Len() != 1 {
			t.Errorf("Len() = %d, want 1", d.Len())
		}
	})
}

func TestLenCountsWindows(t *testing.T) {
	d := newDetector[string](t, DefaultConfig())
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"judged without a window", func() { d.UpdateLiveness("a", t0) }, 0},
		{"reported", func() { d.ReportHeartbeat("a", t0) }, 1},
		{"reported again", func() { d.ReportHeartbeat("a", t0.Add(time.Second)) }, 1},
		{"ensured while dead without window", func() { d.UpdateLiveness("b", t0); d.EnsureWindow("b") }, 2},
		{"ensured again", func() { d.EnsureWindow("b") }, 2},
		{"forgotten", func() { d.Forget("a") }, 1},
		{"collected", func() { d.GarbageCollect(t0.Add(48 * time.Hour)) }, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			if got := d.Len(); got != st.want {
				t.Errorf("Len() = %d, want %d", got, st.want)
			}
		})
	}
}

func TestForget(t *testing.T) {
	d := newDetector[string](t, DefaultConfig())
	for _, id := range []string{"live", "dead"} {
		d.ReportHeartbeat(id, t0)
		d.ReportHeartbeat(id, t0.Add(time.Second))
	}
	d.UpdateLiveness("live", t0.Add(time.Second))
	d.UpdateLiveness("dead", t0.Add(time.Hour))
	checkSets(t, d, []string{"live"}, []string{"dead"})

	d.Forget("live")
	d.Forget("dead")
	d.Forget("unknown")
	checkSets(t, d, nil, nil)
	if d.Len() != 0 {
		t.Errorf("Len() = %d, want 0", d.Len())
	}
	if got := d.GarbageCollect(t0.Add(100 * time.Hour)); len(got) != 0 {
		t.Errorf("GarbageCollect() = %v, want none", got)
	}
}

func TestQueriesOnUnknownNode(t *testing.T) {
	d := newDetector[string](t, DefaultConfig())
	if _, ok := d.Phi("x", t0); ok {
		t.Error("Phi defined")
	}
	if d.IsLive("x") || d.IsDead("x") {
		t.Error("unknown node is live or dead")
	}
	if _, ok := d.TimeOfDeath("x"); ok {
		t.Error("TimeOfDeath defined")
	}
	if got := d.ScheduledForDeletionNodes(t0); got != nil {
		t.Errorf("ScheduledForDeletionNodes() = %v, want nil", got)
	}
	checkSets(t, d, nil, nil)
}

func TestPhiThresholdIsInclusive(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PhiThreshold = 2
	d := newDetector[string](t, cfg)
	d.ReportHeartbeat("a", t0)
	d.ReportHeartbeat("a", t0.Add(5*time.Second)) // mean (5+25)/6 = 5 s exactly
	last := t0.Add(5 * time.Second)

	d.UpdateLiveness("a", last.Add(10*time.Second)) // phi == 2
	if !d.IsLive("a") {
		t.Errorf("phi == threshold: not live (phi %v)", mustPhi(t, d, "a", last.Add(10*time.Second)))
	}
	d.UpdateLiveness("a", last.Add(10*time.Second+time.Nanosecond))
	if !d.IsDead("a") || d.IsLive("a") {
		t.Error("phi just above threshold: not dead")
	}
}

// modelWindow is a naive sampling window: a plain slice, re-summed on use.
type modelWindow struct {
	intervals []float64
	last      time.Time
	hasLast   bool
	heard     bool // reported since the last death
}

// detectorModel is the reference the property test checks Detector
// against; it shares no code with it.
type detectorModel struct {
	cfg     Config
	windows map[int]*modelWindow
	live    map[int]bool
	dead    map[int]time.Time
	learned []float64 // every interval recorded, in seconds
}

func (m *detectorModel) phi(id int, now time.Time) (float64, bool) {
	w := m.windows[id]
	if w == nil || (len(w.intervals) == 0 && (!w.heard || !m.cfg.LearnedPrior)) {
		return 0, false
	}
	sum := 0.0
	for _, x := range w.intervals {
		sum += x
	}
	mean := (sum + 5*m.prior()) / (float64(len(w.intervals)) + 5)
	return max(now.Sub(w.last), 0).Seconds() / mean, true
}

// prior is the prior mean interval in seconds: InitialInterval, or with
// LearnedPrior the additively smoothed mean of the first 1,018 learned
// intervals followed by an exponentially weighted mean (weight 1/1024).
func (m *detectorModel) prior() float64 {
	initial := m.cfg.InitialInterval.Seconds()
	if !m.cfg.LearnedPrior {
		return initial
	}
	const running = 1024 - 5 - 1
	head := m.learned[:min(len(m.learned), running)]
	sum := 0.0
	for _, x := range head {
		sum += x
	}
	p := (5*initial + sum) / float64(5+len(head))
	for _, x := range m.learned[len(head):] {
		p += (x - p) / 1024
	}
	return p
}

// TestDetectorProperties runs random sequences of operations and checks the
// detector against a naive model after each one. Invariants: no node is both
// live and dead; phi is finite, >= 0 and matches the model; only dead nodes
// are garbage collected, exactly when their grace period has elapsed.
func TestDetectorProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const nodes = 4
		cfg := Config{
			PhiThreshold:        rapid.Float64Range(0.1, 20).Draw(t, "phiThreshold"),
			SamplingWindowSize:  rapid.IntRange(1, 6).Draw(t, "windowSize"),
			MaxInterval:         time.Duration(rapid.IntRange(1, 20_000).Draw(t, "maxIntervalMs")) * time.Millisecond,
			InitialInterval:     time.Duration(rapid.IntRange(1, 10_000).Draw(t, "initialIntervalMs")) * time.Millisecond,
			DeadNodeGracePeriod: time.Duration(rapid.IntRange(1, 7200).Draw(t, "graceS")) * time.Second,
			LearnedPrior:        rapid.Bool().Draw(t, "learnedPrior"),
		}
		d, err := New[int](cfg)
		if err != nil {
			t.Fatalf("New() error = %v", err)
		}
		m := &detectorModel{cfg: cfg, windows: map[int]*modelWindow{}, live: map[int]bool{}, dead: map[int]time.Time{}}
		now := t0
		drawID := func(t *rapid.T) int { return rapid.IntRange(0, nodes-1).Draw(t, "id") }
		ensure := func(id int) *modelWindow {
			if m.windows[id] == nil {
				m.windows[id] = &modelWindow{}
			}
			return m.windows[id]
		}
		// die is a dead verdict: UpdateLiveness over the threshold, or MarkDead.
		die := func(id int) {
			delete(m.live, id)
			if _, dead := m.dead[id]; !dead {
				m.dead[id] = now
			}
			if w := m.windows[id]; w != nil {
				w.intervals, w.heard = nil, false
			}
		}
		update := func(id int) {
			// The verdict must follow from Phi as observed just before.
			phi, ok := d.Phi(id, now)
			d.UpdateLiveness(id, now)
			if ok && phi <= cfg.PhiThreshold {
				m.live[id] = true
				delete(m.dead, id)
				return
			}
			die(id)
		}

		report := func(id int) {
			d.ReportHeartbeat(id, now)
			w := ensure(id)
			if w.hasLast {
				if iv := max(now.Sub(w.last), 0); iv <= cfg.MaxInterval {
					w.intervals = append(w.intervals, iv.Seconds())
					m.learned = append(m.learned, iv.Seconds())
					if len(w.intervals) > cfg.SamplingWindowSize {
						w.intervals = w.intervals[1:]
					}
				}
			}
			w.last, w.hasLast, w.heard = now, true, true
		}
		// Steps land on the interesting boundaries often, not only by luck.
		step := rapid.OneOf(
			rapid.Int64Range(0, int64(15*time.Second)),
			rapid.SampledFrom([]int64{0, 1, int64(cfg.MaxInterval), int64(cfg.MaxInterval) + 1, int64(cfg.InitialInterval)}),
		)

		t.Repeat(map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				now = now.Add(time.Duration(step.Draw(t, "dt")))
			},
			"heartbeats": func(t *rapid.T) {
				id := drawID(t)
				for range rapid.IntRange(1, 3*cfg.SamplingWindowSize).Draw(t, "n") {
					now = now.Add(time.Duration(step.Draw(t, "dt")))
					report(id)
				}
			},
			"advanceLong": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(3*time.Hour)).Draw(t, "dt")))
			},
			"report": func(t *rapid.T) { report(drawID(t)) },
			"ensure": func(t *rapid.T) {
				id := drawID(t)
				d.EnsureWindow(id)
				ensure(id)
			},
			"update": func(t *rapid.T) { update(drawID(t)) },
			"markDead": func(t *rapid.T) {
				id := drawID(t)
				d.MarkDead(id, now)
				die(id)
			},
			"updateAll": func(t *rapid.T) {
				for id := range nodes {
					update(id)
				}
			},
			"gc": func(t *rapid.T) {
				deadBefore := maps.Clone(m.dead)
				got := sorted(d.GarbageCollect(now))
				var want []int
				for id, tDeath := range deadBefore {
					if !now.Before(tDeath.Add(cfg.DeadNodeGracePeriod)) {
						want = append(want, id)
					}
				}
				for _, id := range got {
					if _, wasDead := deadBefore[id]; !wasDead {
						t.Fatalf("GarbageCollect returned %d, which was not dead", id)
					}
				}
				if diff := gocmp.Diff(sorted(want), got); diff != "" {
					t.Fatalf("GarbageCollect mismatch (-want +got):\n%s", diff)
				}
				for _, id := range got {
					delete(m.dead, id)
					delete(m.windows, id)
				}
			},
			"forget": func(t *rapid.T) {
				id := drawID(t)
				d.Forget(id)
				delete(m.windows, id)
				delete(m.live, id)
				delete(m.dead, id)
			},
			"": func(t *rapid.T) {
				for id := range nodes {
					if d.IsLive(id) && d.IsDead(id) {
						t.Fatalf("node %d is both live and dead", id)
					}
					if d.IsLive(id) != m.live[id] {
						t.Fatalf("IsLive(%d) = %v, want %v", id, d.IsLive(id), m.live[id])
					}
					wantT, wantDead := m.dead[id]
					gotT, gotDead := d.TimeOfDeath(id)
					if gotDead != wantDead || !gotT.Equal(wantT) || d.IsDead(id) != wantDead {
						t.Fatalf("TimeOfDeath(%d) = %v, %v; want %v, %v", id, gotT, gotDead, wantT, wantDead)
					}
					if d.IsScheduledForDeletion(id, now) && !wantDead {
						t.Fatalf("node %d scheduled for deletion but not dead", id)
					}
					phi, ok := d.Phi(id, now)
					if math.IsNaN(phi) || math.IsInf(phi, 0) || phi < 0 {
						t.Fatalf("Phi(%d) = %v, want finite and >= 0", id, phi)
					}
					wantPhi, wantOK := m.phi(id, now)
					if ok != wantOK || math.Abs(phi-wantPhi) > 1e-9*max(1, wantPhi) {
						t.Fatalf("Phi(%d) = %v, %v; model %v, %v", id, phi, ok, wantPhi, wantOK)
					}
				}
				if diff := gocmp.Diff(sorted(slices.Collect(maps.Keys(m.live))), sorted(d.LiveNodes())); diff != "" {
					t.Fatalf("LiveNodes() mismatch (-want +got):\n%s", diff)
				}
				if diff := gocmp.Diff(sorted(slices.Collect(maps.Keys(m.dead))), sorted(d.DeadNodes())); diff != "" {
					t.Fatalf("DeadNodes() mismatch (-want +got):\n%s", diff)
				}
				if got, want := d.Len(), len(m.windows); got != want {
					t.Fatalf("Len() = %d, want %d", got, want)
				}
			},
		})
	})
}

func BenchmarkReportHeartbeat(b *testing.B) {
	d := newDetector[int](b, DefaultConfig())
	now := t0
	// Fill the window so the benchmark measures the steady state.
	for range 2 * DefaultConfig().SamplingWindowSize {
		now = now.Add(time.Second)
		d.ReportHeartbeat(1, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		d.ReportHeartbeat(1, now)
	}
}

// BenchmarkUpdateLiveness1000 measures one liveness round over 1000 nodes,
// half live and half dead.
func BenchmarkUpdateLiveness1000(b *testing.B) {
	const nodes = 1000
	d := newDetector[int](b, DefaultConfig())
	now := t0
	for range 20 {
		now = now.Add(time.Second)
		for id := range nodes {
			d.ReportHeartbeat(id, now)
		}
	}
	for id := range nodes / 2 {
		d.ReportHeartbeat(id, now.Add(time.Second))
	}
	now = now.Add(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		for id := range nodes {
			d.UpdateLiveness(id, now)
		}
	}
}

// meanOf returns id's smoothed mean interval in seconds.
func meanOf[K comparable](d *Detector[K], id K) float64 {
	w := d.nodes[id].Window
	return w.mean(&d.model, Bar{})
}
