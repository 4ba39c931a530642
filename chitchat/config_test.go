package chitchat

import (
	"testing"
	"time"
)

// With push, the detector counts at most about two heartbeat observations
// a round; without, at most one: anti-entropy alone then carries the
// writes, and the explicit entries it needs bring heartbeats in bursts
// while they last (1,000 simulated nodes with push off saw 24–59 live
// peers die a few seconds after the writes stopped; none with this
// default). An explicit MinInterval, or FixedPrior, is left alone.
func TestMinIntervalDefault(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   time.Duration
	}{
		{name: "push", want: 150 * time.Millisecond},
		{name: "push disabled", mutate: func(c *Config) { c.DisablePush = true }, want: 300 * time.Millisecond},
		{name: "explicit", mutate: func(c *Config) { c.DisablePush, c.FailureDetector.MinInterval = true, 10*time.Millisecond }, want: 10 * time.Millisecond},
		{name: "fixed prior", mutate: func(c *Config) { c.DisablePush, c.FixedPrior = true, true }, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := forTest(1)
			cfg.GossipInterval = 300 * time.Millisecond
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			if got := cfg.withDefaults().FailureDetector.MinInterval; got != tt.want {
				t.Errorf("MinInterval = %v, want %v", got, tt.want)
			}
		})
	}
}
