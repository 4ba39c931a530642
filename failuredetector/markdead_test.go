package failuredetector

import (
	"testing"
	"time"
)

func TestMarkDead(t *testing.T) {
	at := t0.Add(time.Minute) // when the notice arrives
	tests := []struct {
		name      string
		setup     func(d *Detector[string]) // before the notice, all before at
		wantDeath time.Time
		wantLen   int
	}{
		{
			name: "live node dies now",
			setup: func(d *Detector[string]) {
				d.ReportHeartbeat("a", at.Add(-2*time.Second))
				d.ReportHeartbeat("a", at.Add(-time.Second))
				d.UpdateLiveness("a", at.Add(-time.Second))
			},
			wantDeath: at,
			wantLen:   1,
		},
		{
			name: "dead node keeps its time of death",
			setup: func(d *Detector[string]) {
				d.ReportHeartbeat("a", t0)
				d.UpdateLiveness("a", t0.Add(time.Second)) // one heartbeat: dead
			},
			wantDeath: t0.Add(time.Second),
			wantLen:   1,
		},
		{
			name: "reported but never judged",
			setup: func(d *Detector[string]) {
				d.ReportHeartbeat("a", at.Add(-2*time.Second))
				d.ReportHeartbeat("a", at.Add(-time.Second))
			},
			wantDeath: at,
			wantLen:   1,
		},
		{
			name:      "unknown node: dead without a window",
			setup:     func(*Detector[string]) {},
			wantDeath: at,
			wantLen:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector[string](t, DefaultConfig())
			tt.setup(d)
			d.MarkDead("a", at)
			checkSets(t, d, nil, []string{"a"})
			if got, ok := d.TimeOfDeath("a"); !ok || !got.Equal(tt.wantDeath) {
				t.Errorf("TimeOfDeath = %v, %v; want %v", got, ok, tt.wantDeath)
			}
			if phi, ok := d.Phi("a", at); ok {
				t.Errorf("Phi after MarkDead = %v, want undefined (window reset)", phi)
			}
			if got := d.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			if got := d.GarbageCollect(tt.wantDeath.Add(24 * time.Hour)); len(got) != 1 {
				t.Errorf("GarbageCollect(time of death + grace) = %v, want [a]", got)
			}
		})
	}
}

// TestMarkDeadIsAThresholdCrossing compares, field for field, a node
// marked dead at now with one whose phi crossed the threshold at now.
func TestMarkDeadIsAThresholdCrossing(t *testing.T) {
	tests := []struct {
		name    string
		learned bool
	}{
		{"fixed prior", false},
		{"learned prior", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.LearnedPrior = tt.learned
			crossed, marked := newDetector[string](t, cfg), newDetector[string](t, cfg)
			for _, d := range []*Detector[string]{crossed, marked} {
				for i := range 20 {
					d.ReportHeartbeat("a", t0.Add(time.Duration(i)*time.Second))
				}
				d.UpdateLiveness("a", t0.Add(19*time.Second))
			}
			// Mean (19 + 25) / 24 s; phi 8 is reached 14.67 s after the last heartbeat.
			now := t0.Add(19*time.Second + 15*time.Second)
			crossed.UpdateLiveness("a", now)
			marked.MarkDead("a", now)
			if got, want := marked.nodes["a"], crossed.nodes["a"]; got != want {
				t.Errorf("marked dead: %+v\nthreshold crossed: %+v", got, want)
			}
			if !crossed.IsDead("a") {
				t.Fatal("phi did not cross the threshold: the test proves nothing")
			}
		})
	}
}

// TestMarkDeadThenHeartbeat: a later heartbeat judges the node afresh.
func TestMarkDeadThenHeartbeat(t *testing.T) {
	tests := []struct {
		name     string
		learned  bool
		back     time.Duration // from the notice to the next heartbeat
		wantLive bool
	}{
		// The interval since the heartbeat before the notice (1 s + back)
		// is recorded: phi is defined and 0.
		{"fixed prior, back soon", false, time.Second, true},
		// 1 s + 10 s > MaxInterval: no interval, no phi.
		{"fixed prior, back after MaxInterval", false, 10 * time.Second, false},
		// One heartbeat is enough.
		{"learned prior, back after MaxInterval", true, 10 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.LearnedPrior = tt.learned
			d := newDetector[string](t, cfg)
			d.ReportHeartbeat("a", t0)
			d.ReportHeartbeat("a", t0.Add(time.Second))
			d.UpdateLiveness("a", t0.Add(time.Second))
			notice := t0.Add(2 * time.Second)
			d.MarkDead("a", notice)
			d.UpdateLiveness("a", notice) // a round before the node is heard from again
			if !d.IsDead("a") {
				t.Fatal("revived without a heartbeat")
			}
			back := notice.Add(tt.back)
			d.ReportHeartbeat("a", back)
			d.UpdateLiveness("a", back)
			if got := d.IsLive("a"); got != tt.wantLive {
				t.Errorf("live after a heartbeat = %v, want %v", got, tt.wantLive)
			}
			if _, dead := d.TimeOfDeath("a"); dead == tt.wantLive {
				t.Errorf("time of death defined = %v, want %v", dead, !tt.wantLive)
			}
		})
	}
}
