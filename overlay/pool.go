package overlay

// A Pool turns one chitchat node's view of the cluster into topology
// events. It never polls:
//
//	key change under "worker:" (Subscribe: as soon as it is applied) ──┐
//	live-nodes watch (end of a round in which the live set or a live    ├─▶ dirty (cap 1)
//	  node's max version changed: joins, deaths, key deletions)       ──┘      │
//	                                                                             ▼
//	sync goroutine: Snapshot ─▶ candidates ─▶ resolve with the last view ─▶ diff ─▶ events
//	                                                                        ─▶ wake change watchers (the Mesh)
//
// A new peer is reported once chitchat deems it live (three heartbeats);
// a change to a live peer's entry as soon as it arrives; a deletion or a
// death at the end of the next round. Triggers coalesce, and every sync
// reads the current state, so a burst of changes costs one sync and a
// stale trigger never replays an old value.
//
// Each sync first checks this worker's own entry and restores it if
// anything else changed or deleted it (guardSelf).
//
// The view remembers which chitchat node published each entry, so that
// an established worker keeps its worker id, overlay IP and public key
// against newcomers: see claims.go. Quarantined entries are logged at Warn
// once each and counted.
//
// Locking: mu guards the view, the subscriptions and the watchers. It is
// held while events are handed to subscribers, which never blocks (a full
// channel drops the event and counts it).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Defaults of the pool.
const (
	// DefaultEventBuffer is the capacity of each subscription's channel
	// (the seed's broadcast channel holds 256).
	DefaultEventBuffer = 256
	// DefaultGossipInterval is the seed's gossip interval.
	DefaultGossipInterval = time.Second
	// DefaultMarkedForDeletionGracePeriod is the seed's tombstone grace
	// period.
	DefaultMarkedForDeletionGracePeriod = 60 * time.Second
)

// PoolOptions tunes a Pool.
type PoolOptions struct {
	// Logger receives the pool's logs: Info for joins and departures,
	// Warn once per distinct malformed or quarantined entry. Default:
	// discard.
	Logger *slog.Logger
	// EventBuffer is the capacity of each subscription's channel. Default
	// DefaultEventBuffer.
	EventBuffer int
}

// Pool is a gossip pool: this worker's entry in a chitchat node, and the
// view of every other live worker's entry. Its methods are safe for
// concurrent use.
type Pool struct {
	srv        *chitchat.Server
	ownsServer bool
	leave      time.Duration // if > 0, Close leaves the cluster first (owned server only)
	selfID     uint64
	log        *slog.Logger
	buffer     int

	cancel      context.CancelFunc
	unsubscribe func()
	wg          sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error

	dirty chan struct{} // capacity 1: a sync is due

	// bad is the set of entries skipped by the last sync, so each is
	// logged and counted once. Owned by the sync goroutine.
	bad map[Skipped]struct{}

	malformed   atomic.Uint64
	conflicts   atomic.Uint64
	quarantined atomic.Int64 // entries quarantined by the last sync
	dropped     atomic.Uint64

	selfMu    sync.Mutex // guards self and selfValue
	self      PeerInfo
	selfValue string // self.EncodeValue(), as published
	restored  atomic.Uint64

	mu       sync.Mutex // guards the fields below
	view     []claim    // in node_id order; written by the sync goroutine only
	subs     map[chan TopologyEvent]struct{}
	watchers map[chan struct{}]struct{}
	closed   bool
}

// NewPool runs a pool over an existing chitchat node: it sets self's entry
// on srv and watches srv's view. Close stops the pool but not srv, and
// leaves the entry in place.
func NewPool(srv *chitchat.Server, self PeerInfo, opts PoolOptions) (*Pool, error) {
	value, err := self.EncodeValue()
	if err != nil {
		return nil, err
	}
	return newPool(srv, self, value, opts, false)
}

// newPool runs a pool over srv; value is self.EncodeValue().
func newPool(srv *chitchat.Server, self PeerInfo, value string, opts PoolOptions, owns bool) (*Pool, error) {
	if opts.EventBuffer < 0 {
		return nil, fmt.Errorf("overlay: EventBuffer %d is negative", opts.EventBuffer)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		srv:        srv,
		ownsServer: owns,
		selfID:     self.NodeID,
		self:       self.Clone(),
		selfValue:  value,
		log:        log.With("overlay_node", self.NodeID),
		buffer:     cmp.Or(opts.EventBuffer, DefaultEventBuffer),
		dirty:      make(chan struct{}, 1),
		subs:       make(map[chan TopologyEvent]struct{}),
		watchers:   make(map[chan struct{}]struct{}),
	}
	p.unsubscribe = srv.Subscribe(KeyPrefix, func(chitchat.KeyChange) { p.markDirty() })
	if err := srv.Set(GossipKey(self.NodeID), value); err != nil {
		p.unsubscribe()
		return nil, fmt.Errorf("overlay: publish self: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Go(func() {
		// The watch yields its current value at once: that is the first
		// sync.
		for range srv.WatchLiveNodes(ctx) {
			p.markDirty()
		}
	})
	p.wg.Go(func() { p.syncLoop(ctx) })
	return p, nil
}

func (p *Pool) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default: // a sync is already due; it will read the latest state
	}
}

func (p *Pool) syncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.srv.Done():
			return
		case <-p.dirty:
		}
		p.sync()
	}
}

// sync reads the node's current view and publishes what changed.
func (p *Pool) sync() {
	p.guardSelf()
	cands, skipped := candidates(p.srv.Snapshot(), p.selfID)
	// Only this goroutine writes the view, so it may read it unlocked.
	view, conflicts := resolve(p.view, cands, p.Self())
	p.report(append(skipped, conflicts...))
	events := diffInfos(infosOf(p.view), infosOf(view))

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.view = view // the publishers may change with no event
	if len(events) == 0 {
		return
	}
	for _, ev := range events {
		if ev.Kind == Updated {
			p.log.Debug("overlay peer updated", "peer", ev.NodeID, "endpoint", ev.Peer.Endpoint, "overlay_ip", ev.Peer.OverlayIP)
		} else {
			p.log.Info("overlay peer "+ev.Kind.String(), "peer", ev.NodeID, "endpoint", ev.Peer.Endpoint, "overlay_ip", ev.Peer.OverlayIP)
		}
		for ch := range p.subs {
			select {
			case ch <- ev:
			default:
				if n := p.dropped.Add(1); n&(n-1) == 0 {
					p.log.Warn("overlay subscriber too slow: topology event dropped", "dropped", n)
				}
			}
		}
	}
	for ch := range p.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// guardSelf restores this worker's entry if anything but AnnounceSelf
// changed or deleted it: a /set_kv of the demo's HTTP API, an application
// sharing the chitchat node. Every such write reaches the pool: a set
// through the key subscription, a deletion (which chitchat does not
// notify) through the live-nodes watch, which publishes this node's new
// max version at the end of the round.
func (p *Pool) guardSelf() {
	p.selfMu.Lock()
	defer p.selfMu.Unlock()
	key := GossipKey(p.selfID)
	if ns, ok := p.srv.NodeState(p.srv.Self()); ok {
		if v, ok := ns.GetVersioned(key); ok && v.Status == chitchat.StatusSet && v.Value == p.selfValue {
			return
		}
	}
	if err := p.srv.Set(key, p.selfValue); err != nil {
		if !errors.Is(err, chitchat.ErrClosed) {
			p.log.Warn("restoring this worker's overlay entry", "key", key, "err", err)
		}
		return
	}
	p.restored.Add(1)
	p.log.Warn("this worker's overlay entry was changed or deleted by someone else: restored", "key", key)
}

// report logs and counts each skipped entry the first time it is seen.
func (p *Pool) report(skipped []Skipped) {
	seen := make(map[Skipped]struct{}, len(skipped))
	var quarantined int64
	for _, s := range skipped {
		// Errors are not comparable in general: key by everything else.
		k := s
		k.Err = nil
		seen[k] = struct{}{}
		if s.Reason.IsConflict() {
			quarantined++
		}
		if _, old := p.bad[k]; old {
			continue
		}
		switch {
		case s.Reason == SkipMalformed:
			p.malformed.Add(1)
			p.log.Warn("skipping malformed overlay entry", "node", s.Node, "key", s.Key, "err", s.Err)
		case s.Reason.IsConflict():
			p.conflicts.Add(1)
			p.log.Warn("overlay entry quarantined: it claims what an established worker holds",
				"node", s.Node, "key", s.Key, "reason", s.Reason, "err", s.Err)
		default:
			p.log.Info("skipping overlay entry", "node", s.Node, "key", s.Key, "reason", s.Reason, "err", s.Err)
		}
	}
	p.bad = seen
	p.quarantined.Store(quarantined)
}

// Peers returns the view: every live worker's valid entry except this
// worker's, in node_id order. It reflects every event sent so far.
func (p *Pool) Peers() []PeerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return infosOf(p.view)
}

// Subscribe returns the current view and a channel of the events that
// follow it: a subscriber that applies the events to current is always up
// to date. Late subscribers do not see earlier events.
//
// Delivery never blocks the pool: the channel holds PoolOptions.EventBuffer
// events and, when it is full, further events are dropped and counted in
// Stats().EventsDropped. A subscriber that may fall behind should treat a
// drop as "resynchronize from Peers()". cancel unsubscribes and closes the
// channel; Close closes it too.
func (p *Pool) Subscribe() (current []PeerInfo, events <-chan TopologyEvent, cancel func()) {
	ch := make(chan TopologyEvent, p.buffer)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(ch)
		return nil, ch, func() {}
	}
	p.subs[ch] = struct{}{}
	return infosOf(p.view), ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.subs[ch]; ok {
			delete(p.subs, ch)
			close(ch)
		}
	}
}

// watchChanges returns a channel that receives a value after every sync
// that changed the view, coalescing, and holds one at once. It is closed by
// Close.
func (p *Pool) watchChanges() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(ch)
		return ch, func() {}
	}
	p.watchers[ch] = struct{}{}
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.watchers[ch]; ok {
			delete(p.watchers, ch)
			close(ch)
		}
	}
}

// AnnounceSelf republishes this worker's entry, after a key rotation or an
// endpoint change (the seed's announce_self). info.NodeID must be the
// pool's.
func (p *Pool) AnnounceSelf(info PeerInfo) error {
	if info.NodeID != p.selfID {
		return fmt.Errorf("overlay: AnnounceSelf for node %d on the pool of node %d", info.NodeID, p.selfID)
	}
	value, err := info.EncodeValue()
	if err != nil {
		return err
	}
	p.selfMu.Lock()
	defer p.selfMu.Unlock()
	if err := p.srv.Set(GossipKey(info.NodeID), value); err != nil {
		return fmt.Errorf("overlay: announce self: %w", err)
	}
	p.self, p.selfValue = info.Clone(), value
	return nil
}

// Self returns this worker's entry as last announced.
func (p *Pool) Self() PeerInfo {
	p.selfMu.Lock()
	defer p.selfMu.Unlock()
	return p.self.Clone()
}

// Server returns the chitchat node the pool runs on.
func (p *Pool) Server() *chitchat.Server { return p.srv }

// PoolStats counts what a pool skipped and dropped.
type PoolStats struct {
	// Peers is the size of the view.
	Peers int
	// Malformed counts distinct malformed entries (an entry is counted
	// again only if it disappears and comes back).
	Malformed uint64
	// Conflicts counts distinct quarantined entries: entries claiming a
	// worker id, public key or overlay IP that an established worker
	// holds (counted as Malformed is).
	Conflicts uint64
	// Quarantined is the number of entries quarantined now.
	Quarantined int
	// SelfRestored counts the times this worker's own entry was found
	// changed or deleted by someone else, and restored.
	SelfRestored uint64
	// EventsDropped counts events dropped because a subscriber was full.
	EventsDropped uint64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	n := len(p.view)
	p.mu.Unlock()
	return PoolStats{Peers: n, Malformed: p.malformed.Load(), Conflicts: p.conflicts.Load(),
		Quarantined: int(p.quarantined.Load()), SelfRestored: p.restored.Load(), EventsDropped: p.dropped.Load()}
}

// Close stops the pool and closes the subscription channels. If the pool
// started its chitchat node (StartPool), Close first leaves the cluster
// (see GossipConfig.LeaveTimeout; a leave that times out is only logged),
// then shuts the node down and returns its termination error. It is
// idempotent.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		if p.ownsServer && p.leave > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), p.leave)
			if err := p.srv.Leave(ctx); err != nil && !errors.Is(err, chitchat.ErrClosed) {
				p.log.Warn("leaving the gossip cluster", "err", err)
			}
			cancel()
		}
		p.cancel()
		p.unsubscribe()
		p.wg.Wait()
		if p.ownsServer {
			p.closeErr = p.srv.Shutdown()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.closed = true
		for ch := range p.subs {
			close(ch)
		}
		for ch := range p.watchers {
			close(ch)
		}
		p.subs, p.watchers = nil, nil
	})
	return p.closeErr
}
