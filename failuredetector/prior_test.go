package failuredetector

import (
	"math"
	"testing"
	"time"
)

// peersAt reports heartbeats of peers "p0".."p<n-1>" every iv, for rounds
// rounds, starting at start, and returns the time of the last round.
func peersAt(d *Detector[string], n, rounds int, iv time.Duration, start time.Time) time.Time {
	now := start
	for r := range rounds {
		if r > 0 {
			now = now.Add(iv)
		}
		for p := range n {
			d.ReportHeartbeat("p"+string(rune('0'+p)), now)
		}
	}
	return now
}

// secs converts seconds to a Duration, to the nearest nanosecond.
func secs(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

func learnedConfig() Config {
	cfg := DefaultConfig()
	cfg.LearnedPrior = true
	return cfg
}

func TestLearnedPriorValue(t *testing.T) {
	// After k >= 1018 intervals of x, the running mean gives way to an
	// exponential one that forgets 1/1024 of the difference per interval.
	ewma := func(k int, x float64) float64 {
		p := (25 + 1018*x) / 1023
		return x + (p-x)*math.Pow(1-1.0/1024, float64(k-1018))
	}
	tests := []struct {
		name    string
		learned bool
		feed    func(d *Detector[string])
		want    float64 // seconds
	}{
		{"nothing learned yet", true, func(*Detector[string]) {}, 5},
		{"one heartbeat is no interval", true, func(d *Detector[string]) { d.ReportHeartbeat("a", t0) }, 5},
		{"one interval of 1s", true, func(d *Detector[string]) { peersAt(d, 1, 2, time.Second, t0) }, (25 + 1.0) / 6},
		// 5 peers × 199 intervals of 300 ms: running mean.
		{"995 intervals of 300ms", true, func(d *Detector[string]) { peersAt(d, 5, 200, 300*time.Millisecond, t0) }, (25 + 995*0.3) / 1000},
		// 10 peers × 3,000 intervals: exponential.
		{"30,000 intervals of 300ms", true, func(d *Detector[string]) { peersAt(d, 10, 3001, 300*time.Millisecond, t0) }, ewma(30_000, 0.3)},
		{"intervals above MaxInterval are not learned", true, func(d *Detector[string]) { peersAt(d, 3, 5, 11*time.Second, t0) }, 5},
		{"both sides of a pause", true, func(d *Detector[string]) {
			d.ReportHeartbeat("a", t0)
			d.ReportHeartbeat("a", t0.Add(time.Second))
			d.ReportHeartbeat("a", t0.Add(time.Minute))
			d.ReportHeartbeat("a", t0.Add(time.Minute+2*time.Second))
		}, (25 + 1.0 + 2.0) / 7},
		{"off: the prior stays InitialInterval", false, func(d *Detector[string]) { peersAt(d, 5, 200, 300*time.Millisecond, t0) }, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.LearnedPrior = tt.learned
			d := newDetector[string](t, cfg)
			tt.feed(d)
			assertClose(t, "prior", d.model.priorSecs, tt.want, 1e-12)
			if got, want := d.Prior(), time.Duration(tt.want*1e9); (got - want).Abs() > time.Nanosecond {
				t.Errorf("Prior() = %v, want %v", got, want)
			}
		})
	}
}

// TestLearnedPriorJoinAndKill is the case of issue 14: peers heart-beat
// every 300 ms; a node joins, reports one or two heartbeats and is killed.
// With the learned prior it is live at its first heartbeat and dead after
// PhiThreshold × 300 ms = 2.4 s; with the fixed 5 s prior it is never live
// after one heartbeat, and takes 33.7 s to die after two.
func TestLearnedPriorJoinAndKill(t *testing.T) {
	tests := []struct {
		name       string
		learned    bool
		heartbeats []time.Duration // of the new node, after it joins at j
		liveAtLast bool            // judged right after its last heartbeat
		deadAfter  time.Duration   // from the last heartbeat; 0: dead at once
	}{
		{"learned, one heartbeat", true, []time.Duration{0}, true, 2400 * time.Millisecond},
		// Its own interval equals the prior: mean (0.3 + 5 × 0.3) / 6 = 0.3 s.
		{"learned, two heartbeats", true, []time.Duration{0, 300 * time.Millisecond}, true, 2400 * time.Millisecond},
		// Its own 5 s interval weighs 1/6 of the mean, (5 + 5p) / 6, and
		// moves the prior p by 1/1024 of (5 - 0.3) s, as every interval does.
		{"learned, slow newcomer", true, []time.Duration{0, 5 * time.Second}, true, secs(8 * (5 + 5*(0.3+4.7/1024)) / 6)},
		{"fixed prior, one heartbeat", false, []time.Duration{0}, false, 0},
		// Mean (0.3 + 25) / 6 = 4.2167 s; 8 × that = 33.73 s.
		{"fixed prior, two heartbeats", false, []time.Duration{0, 300 * time.Millisecond}, true, secs(8 * 25.3 / 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.LearnedPrior = tt.learned
			d := newDetector[string](t, cfg)
			j := peersAt(d, 10, 3001, 300*time.Millisecond, t0)
			var last time.Time
			for _, hb := range tt.heartbeats {
				last = j.Add(hb)
				d.ReportHeartbeat("new", last)
			}
			d.UpdateLiveness("new", last)
			if got := d.IsLive("new"); got != tt.liveAtLast {
				t.Fatalf("live right after the last heartbeat = %v, want %v", got, tt.liveAtLast)
			}
			if !tt.liveAtLast {
				return
			}
			// The learned prior is 0.3 s to within 1e-13 s: a microsecond
			// either side of the threshold is decisive.
			d.UpdateLiveness("new", last.Add(tt.deadAfter-time.Microsecond))
			if !d.IsLive("new") {
				t.Errorf("dead %v after the last heartbeat, want live until %v", tt.deadAfter-time.Microsecond, tt.deadAfter)
			}
			death := last.Add(tt.deadAfter + time.Microsecond)
			d.UpdateLiveness("new", death)
			if got, ok := d.TimeOfDeath("new"); !ok || !got.Equal(death) {
				t.Errorf("TimeOfDeath = %v, %v; want %v (dead %v after the last heartbeat)", got, ok, death, tt.deadAfter+time.Microsecond)
			}
		})
	}
}

// TestLearnedPriorPhiWithoutIntervals checks phi = elapsed / prior for a
// node with a last heartbeat and no interval, and that a dead node (window
// reset, last heartbeat kept) has no phi and stays dead until it reports
// again.
func TestLearnedPriorPhiWithoutIntervals(t *testing.T) {
	const tol = 1e-12
	d := newDetector[string](t, learnedConfig()) // prior 5 s: nothing learned
	if _, ok := d.Phi("a", t0); ok {
		t.Fatal("phi defined before any heartbeat")
	}
	d.EnsureWindow("a")
	if _, ok := d.Phi("a", t0); ok {
		t.Fatal("phi defined for an ensured window without heartbeat")
	}
	steps := []struct {
		name     string
		at       time.Duration
		report   bool
		wantPhi  float64 // -1: undefined
		wantLive bool
	}{
		{"first heartbeat", 0, true, 0, true},
		{"8 priors later", 40 * time.Second, false, 8, true},
		{"just over", 40*time.Second + time.Nanosecond, false, 8 + 1e-9/5, false},
		// Dead: window reset, last heartbeat kept, no phi until heard from.
		{"still dead", time.Minute, false, -1, false},
		// 61 s > MaxInterval: no interval, yet one heartbeat revives.
		{"heartbeat after the pause", 61 * time.Second, true, 0, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now := t0.Add(st.at)
			if st.report {
				d.ReportHeartbeat("a", now)
			}
			if phi, ok := d.Phi("a", now); st.wantPhi < 0 && ok {
				t.Errorf("phi = %v, want undefined", phi)
			} else if st.wantPhi >= 0 {
				assertClose(t, "phi", mustPhi(t, d, "a", now), st.wantPhi, tol)
			}
			d.UpdateLiveness("a", now)
			if got := d.IsLive("a"); got != st.wantLive {
				t.Errorf("live = %v, want %v", got, st.wantLive)
			}
		})
	}
}

// TestLearnedPriorDeathSticks: a node faster than its peers dies after
// PhiThreshold of its own short mean; its window is then reset. The reset
// must not make it judged by the (longer) learned prior alone, which would
// revive it at the next round without any heartbeat, and kill it again
// later: a flapping dead node.
func TestLearnedPriorDeathSticks(t *testing.T) {
	d := newDetector[string](t, learnedConfig())
	end := peersAt(d, 10, 3001, time.Second, t0) // prior 1 s
	last := end
	for i := range 50 { // the fast node: 49 intervals of 100 ms
		last = end.Add(time.Duration(i) * 100 * time.Millisecond)
		d.ReportHeartbeat("fast", last)
	}
	// Its intervals pulled the prior to 1 - 0.9 × (49/1024 + ...) ≈ 0.957 s;
	// its mean is (4.9 + 5 × 0.957) / 54 ≈ 0.18 s.
	prior, mean := d.model.priorSecs, meanOf(d, "fast")
	assertClose(t, "prior", prior, 0.957, 0.001)
	assertClose(t, "mean", mean, (4.9+5*prior)/54, 1e-12)
	steps := []struct {
		name     string
		at       time.Duration // after the last heartbeat
		wantDead bool
	}{
		{"live within 8 means", secs(7.9 * mean), false},
		{"dead past 8 means", secs(8.1 * mean), true},
		// 2 s / prior 0.957 s = phi 2.1: would be live on the prior alone.
		{"still dead at the next round", 2 * time.Second, true},
		// phi 5.2 on the prior alone.
		{"still dead later", 5 * time.Second, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			d.UpdateLiveness("fast", last.Add(st.at))
			if got := d.IsDead("fast"); got != st.wantDead {
				t.Errorf("dead = %v, want %v", got, st.wantDead)
			}
		})
	}
}

// A capped prior weighs in the mean as priorWeight intervals of the cap
// when the learned prior is above it; below it, the cap changes nothing.
// With PriorFloor the mean is at least the learned prior. The bar reaches
// the verdict.
func TestPhiCappedPrior(t *testing.T) {
	m, err := NewModel(learnedConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Peers beating every 9 s teach a prior of about 9 s.
	for range 400 {
		var w Window
		w.ReportHeartbeat(m, t0)
		w.ReportHeartbeat(m, t0.Add(9*time.Second))
	}
	var n Node
	now := t0
	for range 4 { // three intervals of 1 s (learned too)
		n.ReportHeartbeat(m, now)
		now = now.Add(time.Second)
	}
	prior := m.Prior().Seconds()
	if prior < 8.5 {
		t.Fatalf("learned prior %.2fs, want about 9s", prior)
	}
	last := now.Add(-time.Second)
	at := last.Add(20 * time.Second)
	tests := []struct {
		name string
		bar  Bar
		mean float64 // seconds
	}{
		{"no cap", Bar{}, (3 + 5*prior) / 8},
		{"cap below the prior", Bar{MaxPrior: 2 * time.Second}, (3 + 5*2.0) / 8},
		{"cap above the prior", Bar{MaxPrior: 20 * time.Second}, (3 + 5*prior) / 8},
		// The window's mean, (3 + 5 × prior) / 8, is below the prior.
		{"prior as a floor", Bar{PriorFloor: true}, prior},
		{"cap, and the learned prior as a floor", Bar{MaxPrior: 2 * time.Second, PriorFloor: true}, prior},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phi, ok := n.PhiBy(m, at, tc.bar)
			if want := 20 / tc.mean; !ok || math.Abs(phi-want) > 1e-9 {
				t.Errorf("PhiBy = %v, %v; want %v", phi, ok, want)
			}
			// The verdict follows the same mean: dead just past the
			// threshold, live just before it.
			threshold := 20/tc.mean + 0.01
			for _, d := range []struct {
				threshold float64
				live      bool
			}{{threshold, true}, {threshold - 0.02, false}} {
				k, b := n, tc.bar
				b.Threshold = d.threshold
				k.UpdateLivenessBy(m, at, b)
				if k.IsLive() != d.live {
					t.Errorf("threshold %.3f: live = %v, want %v", d.threshold, k.IsLive(), d.live)
				}
			}
		})
	}
}
