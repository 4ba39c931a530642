package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures an Agent. Zero values take the documented defaults.
type Config struct {
	// Datacenter is the datacenter every node of the catalog is reported
	// in (one chitchat cluster is one datacenter). Default "dc1".
	Datacenter string

	// RefreshInterval is how often the catalog is rebuilt even without a
	// change notification from the server. Changes of live nodes, deaths and
	// leaves are seen at once; the periodic rebuild catches the rest: a dead
	// node forgotten after the dead-node grace period, and gossip about dead
	// nodes. Default 1s.
	RefreshInterval time.Duration

	// MaxServicesPerNode bounds the services read from one node; the
	// others are skipped and counted in Stats.BadEntries. Default 256.
	MaxServicesPerNode int

	// Probe runs one attempt of a check, within ctx (which carries the
	// check's timeout). Nil means HTTPTCPProbe: a real HTTP GET or TCP
	// connect. Tests replace it to run checks in virtual time.
	Probe func(ctx context.Context, c Check) Result

	// FirstIndex is the change index of the empty view the agent starts
	// with; the first change gets FirstIndex+1. 0 means 1. Indexes are the
	// agent's own: starting a restarted agent above its previous
	// incarnation's last index (the demo uses the node's generation, its
	// start time in microseconds) spares clients a blocking query that
	// waits for an index the new agent would take long to reach.
	FirstIndex uint64

	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultDatacenter         = "dc1"
	DefaultRefreshInterval    = time.Second
	DefaultMaxServicesPerNode = 256
)

// Validate reports every problem of c, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	if c.Datacenter != "" && !IsDNSLabel(c.Datacenter) {
		errs = append(errs, fmt.Errorf("catalog: datacenter %q: must be 1 to 63 letters, digits, '-' or '_'", c.Datacenter))
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("catalog: refresh interval %v: must not be negative", c.RefreshInterval))
	}
	if c.FirstIndex > 1<<62 {
		errs = append(errs, fmt.Errorf("catalog: first index %d: must be at most 2^62", c.FirstIndex))
	}
	if c.MaxServicesPerNode < 0 {
		errs = append(errs, fmt.Errorf("catalog: max services per node %d: must not be negative", c.MaxServicesPerNode))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with the defaults applied.
func (c Config) withDefaults() Config {
	if c.Datacenter == "" {
		c.Datacenter = DefaultDatacenter
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxServicesPerNode == 0 {
		c.MaxServicesPerNode = DefaultMaxServicesPerNode
	}
	if c.FirstIndex == 0 {
		c.FirstIndex = 1
	}
	if c.Probe == nil {
		c.Probe = HTTPTCPProbe
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
