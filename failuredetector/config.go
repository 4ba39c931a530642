package failuredetector

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config tunes a [Detector]. Start from [DefaultConfig]; the zero value is
// invalid.
type Config struct {
	// PhiThreshold is the largest phi at which a node is still live. Phi is
	// elapsed time over the smoothed mean interval (see the package doc), so
	// the threshold is roughly "how many missed heartbeats make a node dead".
	// Must be finite and > 0. Default 8.
	PhiThreshold float64

	// SamplingWindowSize is the number of most recent heartbeat intervals
	// whose mean phi uses; older intervals are evicted first. A window
	// takes 96 bytes whatever its size: up to 10 intervals it is exact,
	// above that it keeps sums of blocks and phi is approximate within the
	// bound in the package doc ("Memory and accuracy"). Sizes above 2^30
	// behave as 2^30. Must be >= 1. Default 1000.
	SamplingWindowSize int

	// MaxInterval is the longest heartbeat interval that is recorded;
	// strictly longer intervals (pauses, partitions, restarts) are discarded
	// so they cannot inflate the mean. Must be > 0. Default 10s.
	MaxInterval time.Duration

	// InitialInterval is the prior mean interval for additive smoothing,
	// weighted as 5 observations. It dominates while a node has few
	// intervals. Must be > 0. Default 5s.
	InitialInterval time.Duration

	// LearnedPrior, when true, replaces the fixed prior of the additive
	// smoothing by one learned from every interval the detector records,
	// across all nodes, and lets a node be judged from its first heartbeat
	// on (see "Learned prior" in the package doc):
	//   - the prior starts at InitialInterval, weighted as 5 observations,
	//     and becomes the running mean of the recorded intervals (at most
	//     MaxInterval each), then an exponentially weighted mean over about
	//     the last 1,024 of them: a new node is judged by what is typical
	//     for its peers rather than by InitialInterval;
	//   - a node with a heartbeat but no interval yet (a newcomer, or a
	//     dead node heard from again) has phi = elapsed / prior instead of
	//     no phi: it is live as soon as one heartbeat is reported, and dead
	//     after about PhiThreshold × prior without another (2.4 s at a
	//     typical 300 ms, where a fixed 5 s prior takes over 30 s).
	// Default false: upstream chitchat's behaviour.
	LearnedPrior bool

	// MinInterval coalesces reports: a heartbeat reported less than
	// MinInterval after the previous one recorded is ignored (the previous
	// one stands). A gossip node hears the same heartbeat stream from
	// several peers within a round; recording those near-zero intervals
	// would shrink the mean to a fraction of a round, and the first quiet
	// round would then look like a death. 0 (the default) records every
	// report, as upstream. Must not be negative.
	MinInterval time.Duration

	// DeadNodeGracePeriod is how long a node stays dead before
	// [Detector.GarbageCollect] returns it; after half of it the node is
	// scheduled for deletion. Counted from the first time the node was found
	// dead, not from its last update. Must be > 0. Default 24h.
	DeadNodeGracePeriod time.Duration
}

// priorWeight is the number of pseudo-observations of InitialInterval mixed
// into every mean (chitchat's ADDITIVE_SMOOTHING prior weight).
const priorWeight = 5.0

// DefaultConfig returns chitchat's defaults.
func DefaultConfig() Config {
	return Config{
		PhiThreshold:        8.0,
		SamplingWindowSize:  1000,
		MaxInterval:         10 * time.Second,
		InitialInterval:     5 * time.Second,
		DeadNodeGracePeriod: 24 * time.Hour,
	}
}

// Validate reports every invalid field at once (joined with [errors.Join]),
// or nil. It does not modify c.
func (c Config) Validate() error {
	var errs []error
	switch {
	case math.IsNaN(c.PhiThreshold) || math.IsInf(c.PhiThreshold, 0):
		errs = append(errs, fmt.Errorf("failuredetector: PhiThreshold must be a finite number > 0, got %v", c.PhiThreshold))
	case c.PhiThreshold <= 0:
		errs = append(errs, fmt.Errorf("failuredetector: PhiThreshold must be > 0, got %v", c.PhiThreshold))
	}
	if c.SamplingWindowSize < 1 {
		errs = append(errs, fmt.Errorf("failuredetector: SamplingWindowSize must be >= 1, got %d", c.SamplingWindowSize))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"MaxInterval", c.MaxInterval},
		{"InitialInterval", c.InitialInterval},
		{"DeadNodeGracePeriod", c.DeadNodeGracePeriod},
	} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("failuredetector: %s must be > 0, got %v", f.name, f.d))
		}
	}
	if c.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("failuredetector: MinInterval must not be negative, got %v", c.MinInterval))
	}
	return errors.Join(errs...)
}

// ScheduledForDeletion reports whether a node dead since tDeath is scheduled
// for deletion at now: dead for strictly more than half of
// DeadNodeGracePeriod. It is the rule of [Detector.IsScheduledForDeletion],
// for owners that keep times of death of their own.
//
// It is exact despite the integer halving: for a whole number of
// nanoseconds e, e > floor(G/2) iff 2e > G.
func (c Config) ScheduledForDeletion(tDeath, now time.Time) bool {
	return tDeath.Add(c.DeadNodeGracePeriod / 2).Before(now)
}

// GracePeriodOver reports whether a node dead since tDeath is due for
// garbage collection at now: dead for at least DeadNodeGracePeriod. It is
// the rule of [Detector.GarbageCollect].
func (c Config) GracePeriodOver(tDeath, now time.Time) bool {
	return !now.Before(tDeath.Add(c.DeadNodeGracePeriod))
}
