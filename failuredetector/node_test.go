package failuredetector

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewModel(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" for success
	}{
		{"default", DefaultConfig(), ""},
		{"zero config", Config{}, "PhiThreshold must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewModel(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || m != nil {
					t.Fatalf("NewModel() = %v, %v; want nil and an error containing %q", m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewModel() error = %v", err)
			}
			if diff := cmp.Diff(tt.cfg, m.Config()); diff != "" {
				t.Errorf("Config() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// peer is what an owner with a struct per node looks like: it embeds a
// Node and shares one Model.
type peer struct {
	name string
	Node
}

// TestNodeEmbedded drives an embedded Node through its lifecycle with
// exact virtual times: the same rules as the Detector, without its map.
func TestNodeEmbedded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PhiThreshold = 2
	m, err := NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{name: "a"}
	type want struct {
		live, dead bool
		death      time.Duration // since t0, when dead
		intervals  int
		last       time.Duration // since t0; -1: none
	}
	report := func(now time.Time) { p.ReportHeartbeat(m, now) }
	judge := func(now time.Time) { p.UpdateLiveness(m, now) }
	clearVerdict := func(time.Time) { p.ClearVerdict() }
	steps := []struct {
		name string
		do   func(now time.Time)
		at   time.Duration // since t0
		want want
	}{
		{"not judged yet", func(time.Time) {}, 0, want{intervals: 0, last: -1}},
		{"first heartbeat", report, 0, want{last: 0}},
		{"no interval yet: dead", judge, 0, want{dead: true, death: 0, last: 0}},
		// 5 s interval: mean (5+25)/6 = 5 s.
		{"second heartbeat", report, 5 * time.Second, want{dead: true, death: 0, intervals: 1, last: 5 * time.Second}},
		{"back to life", judge, 5 * time.Second, want{live: true, intervals: 1, last: 5 * time.Second}},
		{"verdict cleared, window kept", clearVerdict, 5 * time.Second, want{intervals: 1, last: 5 * time.Second}},
		{"judged again on the window it kept", judge, 6 * time.Second, want{live: true, intervals: 1, last: 5 * time.Second}},
		{"phi 2 is still live", judge, 15 * time.Second, want{live: true, intervals: 1, last: 5 * time.Second}},
		{"phi above 2 is dead", judge, 15*time.Second + 1, want{dead: true, death: 15*time.Second + 1, last: 5 * time.Second}},
		{"time of death kept", judge, time.Hour, want{dead: true, death: 15*time.Second + 1, last: 5 * time.Second}},
		{"heartbeat after a long pause: no interval", report, time.Hour, want{dead: true, death: 15*time.Second + 1, last: time.Hour}},
		{"a dead node's verdict cleared: no time of death", clearVerdict, time.Hour, want{last: time.Hour}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now := t0.Add(st.at)
			st.do(now)
			got := want{live: p.IsLive(), dead: p.IsDead(), intervals: p.Intervals(m), last: -1}
			if tDeath, ok := p.TimeOfDeath(m); ok {
				got.death = tDeath.Sub(t0)
			}
			if last, ok := p.LastHeartbeat(m); ok {
				got.last = last.Sub(t0)
			}
			if got != st.want {
				t.Errorf("state = %+v, want %+v", got, st.want)
			}
		})
	}
}
