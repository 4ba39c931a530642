package failuredetector

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultConfig(t *testing.T) {
	want := Config{
		PhiThreshold:        8.0,
		SamplingWindowSize:  1000,
		MaxInterval:         10 * time.Second,
		InitialInterval:     5 * time.Second,
		DeadNodeGracePeriod: 24 * time.Hour,
	}
	if diff := cmp.Diff(want, DefaultConfig()); diff != "" {
		t.Errorf("DefaultConfig() mismatch (-want +got):\n%s", diff)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // one line per expected problem, in order
	}{
		{
			name: "default is valid",
			cfg:  DefaultConfig(),
		},
		{
			name: "smallest valid values",
			cfg: Config{
				PhiThreshold:        math.SmallestNonzeroFloat64,
				SamplingWindowSize:  1,
				MaxInterval:         time.Nanosecond,
				InitialInterval:     time.Nanosecond,
				DeadNodeGracePeriod: time.Nanosecond,
			},
		},
		{
			name: "negative threshold",
			cfg:  with(func(c *Config) { c.PhiThreshold = -1 }),
			want: []string{"failuredetector: PhiThreshold must be > 0, got -1"},
		},
		{
			name: "zero threshold",
			cfg:  with(func(c *Config) { c.PhiThreshold = 0 }),
			want: []string{"failuredetector: PhiThreshold must be > 0, got 0"},
		},
		{
			name: "NaN threshold",
			cfg:  with(func(c *Config) { c.PhiThreshold = math.NaN() }),
			want: []string{"failuredetector: PhiThreshold must be a finite number > 0, got NaN"},
		},
		{
			name: "infinite threshold",
			cfg:  with(func(c *Config) { c.PhiThreshold = math.Inf(1) }),
			want: []string{"failuredetector: PhiThreshold must be a finite number > 0, got +Inf"},
		},
		{
			name: "zero window",
			cfg:  with(func(c *Config) { c.SamplingWindowSize = 0 }),
			want: []string{"failuredetector: SamplingWindowSize must be >= 1, got 0"},
		},
		{
			name: "negative max interval",
			cfg:  with(func(c *Config) { c.MaxInterval = -time.Second }),
			want: []string{"failuredetector: MaxInterval must be > 0, got -1s"},
		},
		{
			name: "zero initial interval",
			cfg:  with(func(c *Config) { c.InitialInterval = 0 }),
			want: []string{"failuredetector: InitialInterval must be > 0, got 0s"},
		},
		{
			name: "zero grace period",
			cfg:  with(func(c *Config) { c.DeadNodeGracePeriod = 0 }),
			want: []string{"failuredetector: DeadNodeGracePeriod must be > 0, got 0s"},
		},
		{
			name: "zero value reports every field",
			cfg:  Config{},
			want: []string{
				"failuredetector: PhiThreshold must be > 0, got 0",
				"failuredetector: SamplingWindowSize must be >= 1, got 0",
				"failuredetector: MaxInterval must be > 0, got 0s",
				"failuredetector: InitialInterval must be > 0, got 0s",
				"failuredetector: DeadNodeGracePeriod must be > 0, got 0s",
			},
		},
		{
			name: "several problems at once",
			cfg: with(func(c *Config) {
				c.PhiThreshold = math.Inf(-1)
				c.SamplingWindowSize = -3
				c.DeadNodeGracePeriod = -time.Hour
			}),
			want: []string{
				"failuredetector: PhiThreshold must be a finite number > 0, got -Inf",
				"failuredetector: SamplingWindowSize must be >= 1, got -3",
				"failuredetector: DeadNodeGracePeriod must be > 0, got -1h0m0s",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			err := tt.cfg.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
			// Validate must not fill in defaults or otherwise touch the value.
			if diff := cmp.Diff(before, tt.cfg, cmp.Comparer(sameFloat)); diff != "" {
				t.Errorf("Validate() modified the config (-before +after):\n%s", diff)
			}

			d, newErr := New[string](tt.cfg)
			if (newErr != nil) != (err != nil) {
				t.Fatalf("New() error = %v, Validate() error = %v; want both nil or both non-nil", newErr, err)
			}
			if newErr == nil {
				if diff := cmp.Diff(tt.cfg, d.Config()); diff != "" {
					t.Errorf("Config() mismatch (-want +got):\n%s", diff)
				}
			} else if d != nil {
				t.Errorf("New() returned a detector together with error %v", newErr)
			}
		})
	}
}

// sameFloat treats NaN as equal to itself, unlike ==.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}
