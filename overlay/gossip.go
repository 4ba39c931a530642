package overlay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/failuredetector"
	"github.com/gossipkit/chitchat-go/transport"
)

// GossipConfig configures the chitchat node StartPool runs (the seed's
// GossipConfig).
type GossipConfig struct {
	// ClusterID partitions gossip between clusters. Required.
	ClusterID string
	// ListenAddr is the gossip UDP address to bind. Port 0 picks a free
	// port. Required.
	ListenAddr netip.AddrPort
	// AdvertiseAddr is where peers send gossip. Default: ListenAddr with
	// the bound port; required if ListenAddr's IP is unspecified (0.0.0.0
	// or ::). A port of 0 means the bound port.
	AdvertiseAddr netip.AddrPort
	// Seeds are "ip:port" or "host:port" gossip addresses of other members.
	Seeds []string
	// Generation distinguishes restarts of the same node (chitchat's
	// generation); it must grow at every start. 0 means "now": the start
	// time in microseconds since the Unix epoch (below 2^53, so exact in
	// JavaScript, until the year 2255). The seed defaults to a fixed 0,
	// with which a restarted worker keeps its previous incarnation's
	// node id: peers keep its old key until that state is collected, and
	// never re-learn a worker that left gracefully.
	Generation uint64
	// GossipInterval is the period of gossip rounds. Default 1s.
	GossipInterval time.Duration
	// MarkedForDeletionGracePeriod is how long tombstones are kept.
	// Default 60s, as the seed.
	MarkedForDeletionGracePeriod time.Duration
	// FailureDetector tunes liveness; zero fields take chitchat's defaults.
	FailureDetector failuredetector.Config
	// Transport opens the gossip socket. Default transport.UDP{}.
	Transport transport.Transport
	// Logger receives the pool's and the chitchat node's logs.
	Logger *slog.Logger
	// EventBuffer is PoolOptions.EventBuffer.
	EventBuffer int
	// LeaveTimeout bounds how long Close waits for peers to learn that the
	// node leaves (chitchat's Server.Leave), so that they drop it at once
	// rather than after failure detection. Default 5 gossip intervals;
	// negative skips the leave.
	LeaveTimeout time.Duration
}

// Validate reports every problem of c at once. It does not modify c.
func (c GossipConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("overlay: "+format, args...)) }
	if c.ClusterID == "" {
		bad("ClusterID is empty")
	}
	if !c.ListenAddr.IsValid() {
		bad("ListenAddr is not a valid ip:port")
	}
	if c.AdvertiseAddr.IsValid() {
		if c.AdvertiseAddr.Addr().IsUnspecified() {
			bad("AdvertiseAddr %v is unspecified: give an address peers can reach", c.AdvertiseAddr)
		}
	} else if c.AdvertiseAddr != (netip.AddrPort{}) {
		bad("AdvertiseAddr is not a valid ip:port")
	} else if c.ListenAddr.IsValid() && c.ListenAddr.Addr().IsUnspecified() {
		bad("ListenAddr %v is unspecified: set AdvertiseAddr to an address peers can reach", c.ListenAddr)
	}
	if c.GossipInterval < 0 {
		bad("GossipInterval %v is negative", c.GossipInterval)
	}
	if c.MarkedForDeletionGracePeriod < 0 {
		bad("MarkedForDeletionGracePeriod %v is negative", c.MarkedForDeletionGracePeriod)
	}
	if c.EventBuffer < 0 {
		bad("EventBuffer %d is negative", c.EventBuffer)
	}
	return errors.Join(errs...)
}

// StartPool spawns a chitchat node named "worker:<self.NodeID>" with self's
// entry as its initial key-value, and a pool over it (the seed's
// GossipPool::start). Close stops both. The node also stops when ctx is
// done.
func StartPool(ctx context.Context, cfg GossipConfig, self PeerInfo) (*Pool, error) {
	if err := errors.Join(cfg.Validate(), self.Validate()); err != nil {
		return nil, err
	}
	value, err := self.EncodeValue()
	if err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		tr = transport.UDP{}
	}
	// Bind first, so that a port of 0 can be advertised as the real one
	// (chitchat needs the advertised port up front).
	conn, err := tr.Open(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("overlay: gossip socket: %w", err)
	}
	bound := conn.LocalAddr()
	adv := cfg.AdvertiseAddr
	if !adv.IsValid() {
		adv = bound
	}
	if adv.Port() == 0 {
		adv = netip.AddrPortFrom(adv.Addr(), bound.Port())
	}
	interval := cmp.Or(cfg.GossipInterval, DefaultGossipInterval)
	gen := cfg.Generation
	if gen == 0 {
		gen = uint64(time.Now().UnixMicro())
	}
	srv, err := chitchat.Spawn(ctx, chitchat.Config{
		ID:                           chitchat.NodeID{Name: GossipKey(self.NodeID), Generation: gen, Addr: adv},
		ClusterID:                    cfg.ClusterID,
		GossipInterval:               interval,
		ListenAddr:                   bound,
		Seeds:                        cfg.Seeds,
		FailureDetector:              cfg.FailureDetector,
		MarkedForDeletionGracePeriod: cmp.Or(cfg.MarkedForDeletionGracePeriod, DefaultMarkedForDeletionGracePeriod),
		Logger:                       cfg.Logger,
	}, boundTransport{conn}, chitchat.KeyValue{Key: GossipKey(self.NodeID), Value: value})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("overlay: spawn chitchat: %w", err)
	}
	p, err := newPool(srv, self, value, PoolOptions{Logger: cfg.Logger, EventBuffer: cfg.EventBuffer}, true)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	p.leave = cmp.Or(cfg.LeaveTimeout, 5*interval)
	p.log.Info("gossip pool started", "cluster", cfg.ClusterID, "gossip", adv, "seeds", cfg.Seeds)
	return p, nil
}

// boundTransport hands chitchat a socket that is already bound.
type boundTransport struct{ conn transport.Conn }

func (b boundTransport) Open(netip.AddrPort) (transport.Conn, error) { return b.conn, nil }
