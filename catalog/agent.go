package catalog

// The agent has one goroutine that builds views, fed by three sources:
//
//	WatchLiveNodes ──▶ latest live states ─┐
//	Subscribe(LeftKey) ─── a peer left ────┼─▶ kick ─▶ rebuild ─▶ publish the view if it changed
//	Register, Deregister, check results ───┤
//	RefreshInterval ticker ────────────────┘
//
// A rebuild reads the live and dead node ids from the server, takes live
// peers' states from the watch's latest value (already copies), and
// fetches the self node's and dead nodes' states. Decoding is cached per
// entry version, so a rebuild that finds nothing new costs little.
//
// Locks: viewMu guards the published view and its change channel; regMu
// guards the local registrations, and is held while writing their keys so
// that a late check result never outlives its registration. Neither is held
// while calling out to the caller.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// ErrRunning is returned by a second call to Run.
var ErrRunning = errors.New("catalog: agent already running")

// Agent is a node's catalog: it announces the node's services, runs their
// checks, and maintains the catalog of the whole cluster from gossip. Its
// methods are safe for concurrent use.
type Agent struct {
	cfg Config
	srv *chitchat.Server

	kick chan struct{} // buffered(1): a rebuild is wanted

	viewMu  sync.Mutex
	view    *View
	changed chan struct{} // closed at the next publication or when Run ends

	regMu  sync.Mutex
	regs   map[string]*registration // by service ID
	runCtx context.Context          // non-nil while Run runs: checks started by Register use it
	checks sync.WaitGroup

	started   atomic.Bool
	builder   *builder // used by Run's goroutine only
	bad       atomic.Uint64
	rebuilds  atomic.Uint64
	checksRun atomic.Uint64
}

// registration is a service registered on this agent.
type registration struct {
	svc    Service
	cancel context.CancelFunc // stops its check; nil while none runs
	last   *Result            // last result published
}

// New returns an agent for srv's node. Nothing runs until Run.
func New(cfg Config, srv *chitchat.Server) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, errors.New("catalog: nil server")
	}
	cfg = cfg.withDefaults()
	a := &Agent{
		cfg:     cfg,
		srv:     srv,
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		regs:    make(map[string]*registration),
		builder: newBuilder(cfg.Datacenter, srv.Self(), cfg.MaxServicesPerNode, cfg.Logger.With("component", "catalog")),
	}
	a.view = a.builder.emptyView(cfg.FirstIndex)
	return a, nil
}

// Register announces s on this node (replacing the service of the same ID)
// and, while Run runs, runs its check. Until the first result is
// published, a checked service is critical.
func (a *Agent) Register(s Service) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("catalog: service %q: %w", s.ServiceID(), err)
	}
	s.ID = s.ServiceID()
	s = cloneService(s)
	value, err := encodeService(s)
	if err != nil {
		return fmt.Errorf("catalog: service %q: %w", s.ID, err)
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if old := a.regs[s.ID]; old != nil {
		if serviceEqual(old.svc, s) {
			return nil
		}
		if old.cancel != nil {
			old.cancel()
		}
		delete(a.regs, s.ID)
	}
	if err := a.srv.Set(ServiceKeyPrefix+s.ID, value); err != nil {
		return fmt.Errorf("catalog: service %q: %w", s.ID, err)
	}
	// A result of a previous definition says nothing of this one.
	a.deleteKey(HealthKeyPrefix + s.ID)
	r := &registration{svc: s}
	a.regs[s.ID] = r
	if s.Check != nil && a.runCtx != nil {
		a.startCheckLocked(r)
	}
	a.wake()
	return nil
}

// Deregister removes the service of the given ID from this node and
// reports whether it was registered.
func (a *Agent) Deregister(id string) bool {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	r, ok := a.regs[id]
	if !ok {
		return false
	}
	if r.cancel != nil {
		r.cancel()
	}
	delete(a.regs, id)
	a.deleteKey(ServiceKeyPrefix + id)
	a.deleteKey(HealthKeyPrefix + id)
	a.wake()
	return true
}

// deleteKey deletes one of the node's keys if it exists (the server warns
// about deleting a key it does not have).
func (a *Agent) deleteKey(key string) {
	if _, ok := a.srv.Get(key); ok {
		a.srv.Delete(key)
	}
}

// Services returns the services registered on this agent, by ID.
func (a *Agent) Services() []Service {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	out := make([]Service, 0, len(a.regs))
	for _, id := range slices.Sorted(maps.Keys(a.regs)) {
		out = append(out, cloneService(a.regs[id].svc))
	}
	return out
}

// startCheckLocked starts r's check under a.runCtx.
func (a *Agent) startCheckLocked(r *registration) {
	ctx, cancel := context.WithCancel(a.runCtx)
	r.cancel = cancel
	a.checks.Go(func() { a.runCheck(ctx, r) })
}

// publishResult writes res as r's health entry if r is still registered
// and res differs from the last result published.
func (a *Agent) publishResult(r *registration, res Result) {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if a.regs[r.svc.ID] != r || (r.last != nil && *r.last == res) {
		return
	}
	if err := a.srv.Set(HealthKeyPrefix+r.svc.ID, encodeResult(res)); err != nil {
		a.cfg.Logger.Warn("cannot publish a check result", "service", r.svc.ID, "err", err)
		return
	}
	if r.last != nil && r.last.Status != res.Status {
		a.cfg.Logger.Info("check status changed", "service", r.svc.ID, "from", r.last.Status, "to", res.Status, "output", res.Output)
	}
	r.last = &res
	a.wake()
}

// wake asks Run for a rebuild.
func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run maintains the catalog and runs the checks until ctx is done or the
// server stops. It returns once every goroutine it started has exited; the
// last view stays readable.
func (a *Agent) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		a.regMu.Lock()
		a.runCtx = nil
		for _, r := range a.regs {
			r.cancel = nil
		}
		a.regMu.Unlock()
		wg.Wait()
		a.checks.Wait()
		a.closeView()
	}()

	var latest atomic.Pointer[[]*chitchat.NodeState]
	wg.Go(func() {
		for live := range a.srv.WatchLiveNodes(ctx) {
			latest.Store(&live)
			a.wake()
		}
	})
	unsubscribe := a.srv.Subscribe(chitchat.LeftKey, func(chitchat.KeyChange) { a.wake() })
	defer unsubscribe()

	a.regMu.Lock()
	a.runCtx = ctx
	for _, id := range slices.Sorted(maps.Keys(a.regs)) {
		if r := a.regs[id]; r.svc.Check != nil {
			a.startCheckLocked(r)
		}
	}
	a.regMu.Unlock()

	t := time.NewTicker(a.cfg.RefreshInterval)
	defer t.Stop()
	a.rebuild(latest.Load())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.srv.Done():
			return fmt.Errorf("catalog: the chitchat server stopped: %w", chitchat.ErrClosed)
		case <-a.kick:
		case <-t.C:
		}
		a.rebuild(latest.Load())
	}
}

// rebuild builds a view from the server's current state and publishes it
// if it changed. live is the watch's latest value (nil before the first).
func (a *Agent) rebuild(live *[]*chitchat.NodeState) {
	a.rebuilds.Add(1)
	fromWatch := map[chitchat.NodeID]*chitchat.NodeState{}
	if live != nil {
		for _, ns := range *live {
			fromWatch[ns.ID()] = ns
		}
	}
	self := a.srv.Self()
	var in []nodeInput
	add := func(id chitchat.NodeID, isLive bool) {
		ns := fromWatch[id]
		if ns == nil || id == self {
			var ok bool
			if ns, ok = a.srv.NodeState(id); !ok {
				return // forgotten meanwhile
			}
		}
		in = append(in, nodeInput{id: id, live: isLive, entries: catalogEntries(ns)})
	}
	for _, id := range a.srv.LiveNodeIDs() {
		add(id, true)
	}
	for _, id := range a.srv.DeadNodeIDs() {
		add(id, false)
	}
	a.viewMu.Lock()
	prev := a.view
	a.viewMu.Unlock()
	v := a.builder.build(prev, in)
	a.bad.Store(a.builder.bad)
	if v == prev {
		return
	}
	a.viewMu.Lock()
	a.view = v
	close(a.changed)
	a.changed = make(chan struct{})
	a.viewMu.Unlock()
}

// catalogEntries returns the catalog entries of ns.
func catalogEntries(ns *chitchat.NodeState) []entry {
	var out []entry
	for _, prefix := range []string{ServiceKeyPrefix, HealthKeyPrefix} {
		for k, v := range ns.Prefix(prefix) {
			out = append(out, entry{key: k, value: v.Value, version: v.Version})
		}
	}
	return out
}

// closeView wakes every waiter for the last time.
func (a *Agent) closeView() {
	a.viewMu.Lock()
	defer a.viewMu.Unlock()
	close(a.changed)
	a.changed = nil
}

// View returns the current catalog.
func (a *Agent) View() *View {
	a.viewMu.Lock()
	defer a.viewMu.Unlock()
	return a.view
}

// Wait returns the current view as soon as part of it is above index, or
// when ctx is done, or when Run has returned, whichever comes first. part
// picks the index a query watches, such as View.NodesIndex or a function
// calling View.ServiceIndex. With index 0 it returns at once.
func (a *Agent) Wait(ctx context.Context, index uint64, part func(*View) uint64) *View {
	for {
		a.viewMu.Lock()
		v, changed := a.view, a.changed
		a.viewMu.Unlock()
		if part(v) > index || changed == nil {
			return v
		}
		select {
		case <-ctx.Done():
			return v
		case <-changed:
		}
	}
}

// Stats counts an agent's work.
type Stats struct {
	// BadEntries counts the gossip entries skipped: malformed, invalid or
	// beyond MaxServicesPerNode (once per node, key and version).
	BadEntries uint64
	// Rebuilds counts the catalog rebuilds; Index-1 of the current view
	// counts those that changed something.
	Rebuilds uint64
	// ChecksRun counts the check attempts of this node's services.
	ChecksRun uint64
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{BadEntries: a.bad.Load(), Rebuilds: a.rebuilds.Load(), ChecksRun: a.checksRun.Load()}
}

// cloneService returns a copy of s sharing nothing with it.
func cloneService(s Service) Service {
	s.Tags = slices.Clone(s.Tags)
	s.Meta = maps.Clone(s.Meta)
	if s.Check != nil {
		c := *s.Check
		s.Check = &c
	}
	return s
}
