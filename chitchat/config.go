package chitchat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/gossipkit/chitchat-go/failuredetector"
)

// Config configures an Engine and the Server that drives it. Zero values mean
// "use the default" wherever a default is documented.
type Config struct {
	// ID is this node's identity. Required: a non-empty Name and a valid
	// Addr. With port 0 (and a ListenAddr left to its default, or also of
	// port 0) the Server advertises the port the transport binds; an Engine
	// needs a concrete port.
	ID NodeID

	// ClusterID names the cluster. Syns carrying another id are answered with
	// BadCluster and otherwise ignored. Required.
	ClusterID string

	// GossipInterval is the period of gossip rounds. Default 1s.
	GossipInterval time.Duration

	// ListenAddr is the address the server binds. Default: ID.Addr. It may
	// differ from ID.Addr (e.g. bind 0.0.0.0, advertise a public address).
	ListenAddr netip.AddrPort

	// Seeds are "ip:port" literals or "host:port" names resolved by DNS at
	// start and every DNSRefreshInterval; every resolved address counts.
	Seeds []string

	// FailureDetector configures liveness. Zero fields take the
	// failuredetector defaults (phi 8, window 1000, max interval 10s,
	// dead-node grace period 24h), except that LearnedPrior is on (unless
	// FixedPrior is set), InitialInterval then defaults to twice
	// GossipInterval (the learned prior's starting point; with FixedPrior
	// it stays 5s, upstream's), and MinInterval to half GossipInterval
	// (a whole GossipInterval with DisablePush; with FixedPrior, 0: every
	// report counts, as upstream).
	FailureDetector failuredetector.Config

	// FixedPrior judges new nodes against FailureDetector.InitialInterval
	// alone, as upstream: a node is live only after two heartbeat
	// intervals, and one killed right after joining takes > 15 s to be
	// found dead. By default the prior is learned from every node's
	// intervals and a node is judged from its first evidence of life
	// (docs/design/scale.md §5).
	FixedPrior bool

	// MarkedForDeletionGracePeriod is how long tombstones (and keys set with
	// a TTL) live before garbage collection, measured on each node's own
	// clock from the moment it learned of the deletion. A peer away for
	// longer is brought back by a reset (a full resend of the node's state).
	// Default 1h.
	MarkedForDeletionGracePeriod time.Duration

	// CatchupCallback, if set, is called once after a delta application that
	// reset at least one node state. It runs with the engine's lock held and
	// must not call back into the Engine or Server.
	CatchupCallback func()

	// ExtraLivenessPredicate, if set, filters the nodes published by the
	// live-nodes watch (self included). It is evaluated only when the live set
	// or a live node's max version changes, so it should depend on keys only.
	// LiveNodes() ignores it, as upstream.
	ExtraLivenessPredicate func(*NodeState) bool

	// Logger receives the node's logs. Default: warnings and errors to
	// stderr (misconfiguration must not be silent); slog.New(
	// slog.DiscardHandler) silences it.
	Logger *slog.Logger

	// RandSeed seeds target selection and delta shuffling in the Server.
	// 0 picks a random seed. (The Engine takes its *rand.Rand directly.)
	RandSeed uint64

	// MaxDatagramSize is the budget of every message, envelope included.
	// Default and maximum 65,507 bytes (the largest UDP payload over IPv4).
	// Must be at least MinDatagramSize. It also sizes the Server's receive
	// buffer: a datagram larger than this is dropped and counted in
	// Stats.RecvErrors, so every node of a cluster needs the same budget
	// (or a larger one than any peer's).
	MaxDatagramSize int

	// DisablePush turns off the push of news as it happens
	// (docs/design/scale.md §7): news then waits for gossip rounds, as
	// upstream.
	DisablePush bool
	// PushFanout is how many nodes a push is sent to, the origin's and
	// every forwarder's: a push reaches N nodes in log_fanout(N) hops.
	// Default 3.
	PushFanout int
	// PushRedundancy is how many independent trees carry each push: each
	// node receives it that many times (memberlist's retransmit
	// multiplier, for this scheme). More costs bandwidth and survives more
	// loss. Default 1.
	PushRedundancy int
	// PushRate caps the push datagrams this node sends, originated and
	// forwarded, per second (a token bucket holding a tenth of a second's
	// worth). Beyond it, our news waits for the next Flush or round and
	// forwards are dropped (anti-entropy completes them). Default 1,000.
	PushRate float64

	// DisableStreams turns off stream exchanges (bulk state over TCP, or
	// the transport's streams; docs/design/scale.md §4): everything then
	// travels in datagrams.
	DisableStreams bool
	// StreamSyncInterval is the period of stream exchanges with a random
	// live peer (a seed while none is live), the safety net of partial
	// digests; a peer that a datagram delta could not fully serve gets
	// one at most once per interval. Default 30s.
	StreamSyncInterval time.Duration
	// StreamTimeout bounds one stream exchange, connection included.
	// Default 10s.
	StreamTimeout time.Duration

	// MaxStreamMessageSize bounds one message of a stream exchange (bulk
	// state over TCP, docs/design/scale.md §4), in bytes, both what this
	// node sends and what it accepts. Default 64 MiB.
	MaxStreamMessageSize int

	// Resolver resolves seed host names. Default net.DefaultResolver (set
	// by the Server).
	Resolver Resolver

	// DNSRefreshInterval is the period of seed re-resolution when a seed
	// needs DNS. Default 60s, as upstream.
	DNSRefreshInterval time.Duration

	// EventBuffer is the number of key-change events buffered per
	// subscription of the Server before further events are dropped (and
	// counted in Stats.EventsDropped). Default 4096.
	EventBuffer int

	// Limits bound what peers can make this node hold. Zero fields take the
	// defaults of DefaultLimits.
	Limits Limits

	// Keyring, if set, authenticates and encrypts every datagram with
	// XChaCha20-Poly1305 (74 bytes per datagram, taken from
	// MaxDatagramSize). Datagrams that fail authentication, replays and
	// datagrams of another cluster are dropped and counted.
	Keyring *Keyring
	// AcceptPlaintext, with a Keyring, also accepts unencrypted datagrams:
	// the migration step that lets a live cluster switch encryption on
	// (memberlist's GossipVerifyIncoming=false).
	AcceptPlaintext bool
	// SendPlaintext, with a Keyring, still sends unencrypted datagrams: the
	// first migration step, while some nodes have no key yet
	// (memberlist's GossipVerifyOutgoing=false).
	SendPlaintext bool
}

// Limits bound the state a node keeps on behalf of its peers, so that a
// flood of invented nodes, keys or oversized values cannot grow its memory
// without bound. Honest nodes never reach them with the defaults.
type Limits struct {
	// MaxNodes caps the node states held, self included. When it is
	// reached, a newly mentioned node replaces, in this order, the oldest
	// node never seen live and without evidence of life, a node not live
	// superseded by a live later generation, the node dead or left the
	// longest, and (for a node in direct contact only) the oldest node never
	// heard from directly; otherwise it is ignored (docs/PROTOCOL.md §17.2).
	// Default 10,000.
	MaxNodes int
	// MaxKeysPerNode caps the keys (tombstones included) of one node. A
	// node delta that would exceed it is refused. Default 100,000.
	MaxKeysPerNode int
	// MaxKeySize caps the size of a key in bytes. Default 4,096.
	MaxKeySize int
	// MaxValueSize caps the size of a value in bytes; a key-value must also
	// fit one datagram. Default 61,440.
	MaxValueSize int
	// MaxNodeNameSize caps the size of a node name (NodeID.Name) in bytes,
	// ours and every peer's: a node mentioned with a longer name is ignored.
	// Default 256.
	MaxNodeNameSize int
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxNodes: 10_000, MaxKeysPerNode: 100_000, MaxKeySize: 4096, MaxValueSize: 60 << 10, MaxNodeNameSize: 256}
}

// limitField is one field of a Limits, for Validate and withDefaults.
type limitField struct {
	name  string
	v     *int
	deflt int
}

// fields returns every field of l with its default.
func (l *Limits) fields() [5]limitField {
	d := DefaultLimits()
	return [...]limitField{
		{"MaxNodes", &l.MaxNodes, d.MaxNodes},
		{"MaxKeysPerNode", &l.MaxKeysPerNode, d.MaxKeysPerNode},
		{"MaxKeySize", &l.MaxKeySize, d.MaxKeySize},
		{"MaxValueSize", &l.MaxValueSize, d.MaxValueSize},
		{"MaxNodeNameSize", &l.MaxNodeNameSize, d.MaxNodeNameSize},
	}
}

// Resolver looks up the addresses of a host name.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults.
const (
	DefaultGossipInterval               = time.Second
	DefaultMarkedForDeletionGracePeriod = time.Hour
	DefaultDNSRefreshInterval           = 60 * time.Second
	DefaultEventBuffer                  = 4096
	// MinDatagramSize is the smallest datagram budget accepted: enough for
	// a digest of a few nodes and one small key-value.
	MinDatagramSize = 512
	// DefaultMaxStreamMessageSize bounds a stream message by default.
	DefaultMaxStreamMessageSize = 64 << 20
	DefaultStreamSyncInterval   = 30 * time.Second
	DefaultStreamTimeout        = 10 * time.Second
	// Push defaults.
	DefaultPushFanout     = 3
	DefaultPushRedundancy = 1
	DefaultPushRate       = 1000
)

// Validate reports every problem of c at once, each naming the field and
// what to fix. It does not modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("chitchat: "+format, args...))
	}
	if c.ID.Name == "" {
		bad("ID.Name is empty: set a name unique across the cluster")
	}
	if !c.ID.Addr.IsValid() {
		bad("ID.Addr %q is not a valid ip:port", c.ID.Addr)
	} else if c.ID.Addr.Addr().IsUnspecified() {
		bad("ID.Addr %v is a wildcard address: other nodes cannot send to it; advertise this machine's address (ListenAddr may stay a wildcard)", c.ID.Addr)
	}
	if c.ID.Addr.Port() == 0 && c.ListenAddr.IsValid() && c.ListenAddr.Port() != 0 {
		bad("ID.Addr has port 0 but ListenAddr %v does not: set the advertised port, or listen on port 0 too", c.ListenAddr)
	}
	if c.ClusterID == "" {
		bad("ClusterID is empty: set the cluster's name")
	}
	if c.GossipInterval < 0 {
		bad("GossipInterval is %v: it must be positive (or 0 for the default %v)", c.GossipInterval, DefaultGossipInterval)
	}
	if c.ListenAddr.IsValid() != (c.ListenAddr != netip.AddrPort{}) {
		bad("ListenAddr %q is not a valid ip:port", c.ListenAddr)
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s); err != nil {
			bad("seed %q is not host:port: %v", s, err)
		}
	}
	if err := c.withDefaults().FailureDetector.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MarkedForDeletionGracePeriod < 0 {
		bad("MarkedForDeletionGracePeriod is %v: it must be positive (or 0 for the default %v)",
			c.MarkedForDeletionGracePeriod, DefaultMarkedForDeletionGracePeriod)
	}
	if c.MaxDatagramSize != 0 && (c.MaxDatagramSize < MinDatagramSize || c.MaxDatagramSize > MaxDatagramSize) {
		bad("MaxDatagramSize is %d: it must be between %d and %d (or 0 for %d)",
			c.MaxDatagramSize, MinDatagramSize, MaxDatagramSize, MaxDatagramSize)
	}
	if c.StreamSyncInterval < 0 || c.StreamTimeout < 0 {
		bad("StreamSyncInterval %v and StreamTimeout %v must be positive (or 0 for the defaults %v and %v)",
			c.StreamSyncInterval, c.StreamTimeout, DefaultStreamSyncInterval, DefaultStreamTimeout)
	}
	if c.PushFanout < 0 || c.PushRedundancy < 0 {
		bad("PushFanout %d and PushRedundancy %d must be positive (or 0 for the defaults %d and %d)",
			c.PushFanout, c.PushRedundancy, DefaultPushFanout, DefaultPushRedundancy)
	}
	if c.PushRate < 0 || math.IsNaN(c.PushRate) || math.IsInf(c.PushRate, 0) {
		bad("PushRate is %v: it must be a positive number of datagrams per second (or 0 for %d)", c.PushRate, DefaultPushRate)
	}
	if c.MaxStreamMessageSize != 0 && c.MaxStreamMessageSize < MaxDatagramSize {
		bad("MaxStreamMessageSize is %d: it must be at least %d (or 0 for %d)",
			c.MaxStreamMessageSize, MaxDatagramSize, DefaultMaxStreamMessageSize)
	}
	if c.DNSRefreshInterval < 0 {
		bad("DNSRefreshInterval is %v: it must be positive (or 0 for the default %v)", c.DNSRefreshInterval, DefaultDNSRefreshInterval)
	}
	if c.EventBuffer < 0 {
		bad("EventBuffer is %d: it must be positive (or 0 for the default %d)", c.EventBuffer, DefaultEventBuffer)
	}
	for _, l := range c.Limits.fields() {
		if *l.v < 0 {
			bad("Limits.%s is %d: it must be positive (or 0 for the default %d)", l.name, *l.v, l.deflt)
		}
	}
	if c.Limits.MaxNodes == 1 {
		bad("Limits.MaxNodes is 1: it must leave room for peers")
	}
	if maxName := cmp.Or(c.Limits.MaxNodeNameSize, DefaultLimits().MaxNodeNameSize); len(c.ID.Name) > maxName {
		bad("ID.Name is %d bytes: at most Limits.MaxNodeNameSize (%d) are allowed", len(c.ID.Name), maxName)
	}
	if c.Keyring != nil && c.MaxDatagramSize != 0 && c.MaxDatagramSize-sealOverhead < MinDatagramSize {
		bad("MaxDatagramSize is %d: with a Keyring it must be at least %d (%d bytes go to encryption)",
			c.MaxDatagramSize, MinDatagramSize+sealOverhead, sealOverhead)
	}
	if (c.AcceptPlaintext || c.SendPlaintext) && c.Keyring == nil {
		bad("AcceptPlaintext and SendPlaintext need a Keyring: they are migration steps towards encryption")
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	c.ID.Addr = normalizeAddr(c.ID.Addr)
	if c.GossipInterval == 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if !c.ListenAddr.IsValid() {
		c.ListenAddr = c.ID.Addr
	}
	d := failuredetector.DefaultConfig()
	fd := &c.FailureDetector
	if fd.PhiThreshold == 0 {
		fd.PhiThreshold = d.PhiThreshold
	}
	if fd.SamplingWindowSize == 0 {
		fd.SamplingWindowSize = d.SamplingWindowSize
	}
	if fd.MaxInterval == 0 {
		fd.MaxInterval = d.MaxInterval
	}
	if fd.InitialInterval == 0 {
		fd.InitialInterval = d.InitialInterval
		if !c.FixedPrior {
			// The learned prior starts from what a small cluster
			// observes: a heartbeat every round or two.
			fd.InitialInterval = 2 * c.GossipInterval
		}
	}
	if fd.DeadNodeGracePeriod == 0 {
		fd.DeadNodeGracePeriod = d.DeadNodeGracePeriod
	}
	fd.LearnedPrior = !c.FixedPrior
	if fd.MinInterval == 0 && !c.FixedPrior {
		// Several peers relay a node's heartbeat within a round: count
		// at most about two observations a round, so that the mean stays
		// a round and not the gaps between peers.
		fd.MinInterval = c.GossipInterval / 2
		if c.DisablePush {
			// Without push, anti-entropy alone carries the writes, and
			// while it does the explicit digest entries it needs bring
			// heartbeats more often than a round: a mean learned then
			// made 24–59 of 1,000 simulated nodes see live peers die a
			// few seconds after the writes stopped. One observation a
			// round at most keeps the mean at the gossip cadence.
			fd.MinInterval = c.GossipInterval
		}
	}
	if c.MarkedForDeletionGracePeriod == 0 {
		c.MarkedForDeletionGracePeriod = DefaultMarkedForDeletionGracePeriod
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxDatagramSize == 0 {
		c.MaxDatagramSize = MaxDatagramSize
	}
	if c.DNSRefreshInterval == 0 {
		c.DNSRefreshInterval = DefaultDNSRefreshInterval
	}
	if c.MaxStreamMessageSize == 0 {
		c.MaxStreamMessageSize = DefaultMaxStreamMessageSize
	}
	c.StreamSyncInterval = cmp.Or(c.StreamSyncInterval, DefaultStreamSyncInterval)
	c.StreamTimeout = cmp.Or(c.StreamTimeout, DefaultStreamTimeout)
	c.PushFanout = cmp.Or(c.PushFanout, DefaultPushFanout)
	c.PushRedundancy = cmp.Or(c.PushRedundancy, DefaultPushRedundancy)
	c.PushRate = cmp.Or(c.PushRate, DefaultPushRate)
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	for _, l := range c.Limits.fields() {
		if *l.v == 0 {
			*l.v = l.deflt
		}
	}
	c.Seeds = append([]string(nil), c.Seeds...)
	return c
}

// parseSeeds splits seeds into literal addresses and names that need DNS.
func parseSeeds(seeds []string) (static []netip.AddrPort, dns []string) {
	for _, s := range seeds {
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(s)); err == nil {
			static = append(static, normalizeAddr(ap))
			continue
		}
		dns = append(dns, s)
	}
	return static, dns
}
