package chitchat

// The server drives an Engine over a transport. It is the only part of the
// package with goroutines, sockets and timers:
//
//	recv loop    ── datagram ─▶ decode ─▶ lock, Engine.Process, unlock ─▶ send reply
//	gossip loop  ── tick ─────▶ lock, Engine.Tick, unlock ─▶ send the Syn to each target
//	                            ─▶ publish the live-nodes watch if it changed
//	dns loop     ── every DNSRefreshInterval, if a seed is a host name ─▶ Engine.SetSeeds
//	dispatchers  ── one per Subscribe: deliver key changes to the callback
//
// One mutex, mu, guards the Engine. It is held to process one message, build
// one Syn or run one round's bookkeeping, never during I/O or a user
// callback. Key changes go from the Engine's listeners (under mu) into each
// subscription's bounded channel without blocking; a full channel drops and
// counts.
//
// Lifecycle:
//
//	New ──▶ Run(ctx) ──▶ ctx done / Shutdown / fatal error / panic ──▶ stopped
//
// Run returns once every goroutine it started has exited and the socket is
// closed. A panic in a goroutine is recovered and becomes Run's error
// (wrapping ErrPanicked).

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/transport"
)

// Errors of the Server.
var (
	// ErrClosed is returned by calls on a server that has stopped.
	ErrClosed = errors.New("chitchat: server closed")
	// ErrPanicked is wrapped by the error of a server whose goroutine panicked.
	ErrPanicked = errors.New("chitchat server panicked")
	// ErrRunning is returned by a second call to Run.
	ErrRunning = errors.New("chitchat: server already running")
	// ErrNoSuchKey is returned when deleting a key this node does not have.
	ErrNoSuchKey = errors.New("chitchat: no such key")
)

// Server runs one node: an Engine, a socket, the gossip loop. Its methods are
// safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	conn  transport.Conn
	seeds *seedResolver

	mu     sync.Mutex // guards engine and leave
	engine *Engine
	leave  *leaveState

	sealer   *sealer   // nil without a Keyring
	sealBufs sync.Pool // of *[]byte: sealed datagrams, reused once sent

	live  *watch[[]*NodeState]
	stats serverStats

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown
	done     chan struct{} // closed when Run has returned, or at Shutdown if it never ran
	errMu    sync.Mutex
	err      error // the termination error

	subsWG sync.WaitGroup // dispatchers

	keys keyOps // cluster-wide key rotation (server_keys.go)

	// alone tracks how long the node has seen no live peer (gossip loop
	// only).
	alone struct {
		since time.Time
		next  time.Duration
	}

	// Streams (server_stream.go): nil without a transport that has them.
	streams    transport.Streams
	ln         net.Listener
	streamsOut chan struct{} // semaphore of exchanges we start
	streamsIn  chan struct{} // semaphore of exchanges we answer
	// streamsQueued bounds the incoming connections waiting for streamsIn.
	streamsQueued chan struct{}
	streamWG      sync.WaitGroup
	streamStats   streamStats

	// testHookProcess, if set, is called with every decoded message before
	// processing (tests use it to inject a panic, upstream's PanicForTest).
	testHookProcess func(Message)
}

// New binds the socket on cfg.ListenAddr, resolves the seeds and builds the
// engine with initial key-values. The node does nothing until Run.
func New(cfg Config, tr transport.Transport, initial ...KeyValue) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		// Misconfiguration must not be silent: a seed that does not
		// resolve, peers refused for a wrong key or for plaintext, a node
		// alone for a minute are warnings on stderr, rate limited.
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg = cfg.withDefaults()
	seed := cfg.RandSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	// Resolve before binding, as upstream, so the first round is useful.
	seeds := newSeedResolver(cfg.Seeds, cfg.Resolver)
	resolved := seeds.resolve(context.Background(), cfg.Logger.Warn)
	conn, ln, lnErr, err := open(cfg, tr)
	if err != nil {
		return nil, fmt.Errorf("chitchat: open %v: %w", cfg.ListenAddr, err)
	}
	if cfg.ID.Addr.Port() == 0 {
		// Advertise the port the transport picked.
		cfg.ID.Addr = netip.AddrPortFrom(cfg.ID.Addr.Addr(), conn.LocalAddr().Port())
	}
	engineCfg := cfg
	if cfg.Keyring != nil {
		// Sealing adds sealOverhead bytes to every datagram and frame.
		engineCfg.MaxDatagramSize -= sealOverhead
		engineCfg.MaxStreamMessageSize -= sealOverhead
	}
	e, err := NewEngine(engineCfg, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), initial)
	if err != nil {
		conn.Close()
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	e.SetSeeds(resolved)
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.ID.Name),
		conn:   conn,
		seeds:  seeds,
		engine: e,
		live:   newWatch[[]*NodeState](nil),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	// Plaintext answers are limited to 3 times the request: pad first
	// contacts so that they get a useful answer.
	e.padSyns = cfg.Keyring == nil || cfg.SendPlaintext
	switch {
	case ln != nil:
		s.streams, s.ln = tr.(transport.Streams), ln
		s.streamsOut, s.streamsIn = make(chan struct{}, maxStreamsOut), make(chan struct{}, maxStreamsIn)
		s.streamsQueued = make(chan struct{}, maxStreamsQueued)
	case lnErr != nil && !errors.Is(lnErr, transport.ErrNoStreams):
		cfg.Logger.Warn("no stream exchanges: cannot listen for streams", "addr", conn.LocalAddr(), "err", lnErr)
	}
	if s.streams == nil {
		e.cfg.DisableStreams = true // nothing would carry them
	}
	if cfg.Keyring != nil {
		s.sealer = newSealer(cfg.Keyring, cfg.ClusterID, cfg.ID.Addr, uint64(time.Now().UnixNano()), cfg.Limits.MaxNodes)
		s.sealer.clock = func() uint64 { return uint64(max(time.Now().UnixNano(), 0)) }
	}
	return s, nil
}

// open opens the datagram endpoint and, if the transport carries streams
// and they are on, the stream listener on the same address. With port 0
// the kernel picks a free UDP port whose TCP twin may be taken (by one of
// the many outgoing connections of a busy host): then both are opened
// again on another port, a few times, rather than running without
// streams.
func open(cfg Config, tr transport.Transport) (conn transport.Conn, ln net.Listener, lnErr, err error) {
	st, streams := tr.(transport.Streams)
	streams = streams && !cfg.DisableStreams
	for attempt := 0; ; attempt++ {
		if conn, err = tr.Open(cfg.ListenAddr); err != nil || !streams {
			return conn, nil, nil, err
		}
		ln, lnErr = st.Listen(conn.LocalAddr())
		if lnErr == nil || cfg.ListenAddr.Port() != 0 || attempt == 15 || errors.Is(lnErr, transport.ErrNoStreams) {
			return conn, ln, lnErr, nil
		}
		conn.Close()
	}
}

// Spawn is New followed by Run in a goroutine (upstream's spawn_chitchat).
// Stop the node with Shutdown or by cancelling ctx.
func Spawn(ctx context.Context, cfg Config, tr transport.Transport, initial ...KeyValue) (*Server, error) {
	s, err := New(cfg, tr, initial...)
	if err != nil {
		return nil, err
	}
	s.started.Store(true)
	go s.run(ctx) // joined through s.done
	return s, nil
}

// Run gossips until ctx is done, Shutdown is called, the socket fails or a
// goroutine panics. It returns nil on a requested stop, the error otherwise,
// and only after every goroutine it started has exited.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	return s.run(ctx)
}

func (s *Server) run(ctx context.Context) error {
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("goroutine panicked", "goroutine", name, "panic", r, "stack", string(debug.Stack()))
					s.setErr(fmt.Errorf("%w: %s: %v", ErrPanicked, name, r))
					cancel()
				}
			}()
			if err := f(ctx); err != nil {
				s.setErr(err)
				cancel()
			}
		})
	}
	if s.sealer != nil {
		s.Subscribe(keyOpKey, s.onKeyOp) // key rotation from other nodes
	}
	spawn("recv", s.recvLoop)
	spawn("gossip", s.gossipLoop)
	if s.ln != nil {
		spawn("streams", s.acceptStreams)
	}
	if len(s.seeds.names) > 0 {
		spawn("dns", s.dnsLoop)
	}
	select {
	case <-ctx.Done():
	case <-s.stop:
	}
	cancel()
	s.conn.Close() // unblocks the recv loop
	if s.ln != nil {
		s.ln.Close() // unblocks the stream accept loop
	}
	wg.Wait()
	s.streamWG.Wait()
	s.closeOnce()
	s.subsWG.Wait()
	return s.Err()
}

// Shutdown stops the server and waits until Run has returned. It returns the
// termination error (nil for a clean stop). Calling it again is harmless.
func (s *Server) Shutdown() error {
	s.stopOnce.Do(func() { close(s.stop) })
	if s.started.CompareAndSwap(false, true) {
		// Never ran: release what New acquired.
		s.conn.Close()
		s.closeOnce()
		close(s.done)
	}
	<-s.done
	return s.Err()
}

// closeOnce ends the live-nodes watch and the subscriptions.
func (s *Server) closeOnce() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.live.close()
}

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the termination error: nil while running or after a clean
// stop.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *Server) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *Server) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// withEngine runs f on the engine under the lock. The deferred unlock keeps a
// panic in f from leaving the lock held.
func (s *Server) withEngine(f func(e *Engine)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.engine)
}

func (s *Server) recvLoop(ctx context.Context) error {
	// No peer with the same budget sends more than MaxDatagramSize bytes
	// (sealed datagrams included); a larger datagram is truncated by the
	// kernel, dropped and counted in RecvErrors. At the default budget this
	// is the largest UDP payload; at a 1,400-byte budget it saves 126 KiB
	// per node (this buffer and the plaintext one).
	buf := make([]byte, recvBufferSize(s.cfg))
	var out, plain []byte
	if s.sealer != nil {
		plain = make([]byte, 0, len(buf))
	}
	for {
		n, from, err := s.conn.Recv(buf)
		if err != nil {
			switch {
			case errors.Is(err, transport.ErrClosed) || ctx.Err() != nil:
				return nil
			case transport.IsTransient(err):
				if c := s.stats.recvErrors.Add(1); isPow2(c) {
					s.log.Warn("transient UDP recv error", "err", err, "count", c)
				}
				continue
			}
			s.log.Error("fatal UDP recv error, stopping gossip loop", "err", err)
			return fmt.Errorf("chitchat: fatal recv error: %w", err)
		}
		b := buf[:n]
		in := Inbound{From: from, Size: n}
		if s.sealer != nil {
			// Replies go to the authenticated sender, never to the UDP
			// source of a sealed datagram.
			if b, in = s.unseal(b, in, plain); b == nil {
				continue
			}
		}
		out = s.handleDatagram(ctx, in, b, out[:0])
	}
}

// recvBufferSize is the receive buffer of a server with configuration cfg
// (defaults applied): its datagram budget.
func recvBufferSize(cfg Config) int { return cfg.MaxDatagramSize }

// unseal returns the plaintext of a received datagram and how it arrived:
// from its authenticated sender (sealed), or from its source address
// (accepted plaintext); or nil (counted) if it must be dropped.
func (s *Server) unseal(b []byte, in Inbound, scratch []byte) ([]byte, Inbound) {
	if !isSealed(b) {
		if s.cfg.AcceptPlaintext {
			return b, in
		}
		if n := s.stats.plaintextRefused.Add(1); isPow2(n) {
			s.log.Warn("unencrypted datagram refused: the sender has no keyring (or sends plaintext)", "from", in.From, "count", n)
		}
		return nil, in
	}
	o, err := s.sealer.open(b, scratch)
	if err == nil {
		in.From, in.Authentic = o.sender, true
		return o.msg, in
	}
	var c *atomic.Uint64
	switch err {
	case errWrongCluster:
		c = &s.stats.wrongCluster
	case errReplay:
		c = &s.stats.replays
	case errFuture:
		c = &s.stats.futureCounters
	default:
		c = &s.stats.authFailures
	}
	if n := c.Add(1); isPow2(n) {
		s.log.Warn("encrypted datagram dropped", "err", err, "count", n)
	}
	return nil, in
}

// handleDatagram decodes, processes and answers one datagram. out is a
// scratch buffer for the reply, returned for reuse.
func (s *Server) handleDatagram(ctx context.Context, in Inbound, b []byte, out []byte) []byte {
	s.stats.received.Add(1)
	s.stats.receivedBytes.Add(uint64(len(b)))
	m, err := DecodeMessage(b)
	if err != nil {
		c, what := &s.stats.decodeErrors, "invalid-chitchat-payload"
		if errors.Is(err, ErrVersion) {
			c, what = &s.stats.versionMismatch, "datagram of another protocol version refused"
		}
		if n := c.Add(1); isPow2(n) {
			s.log.Warn(what, "payload_len", len(b), "from", in.From, "err", err, "count", n)
		}
		return out
	}
	if s.testHookProcess != nil {
		s.testHookProcess(m)
	}
	now := time.Now()
	var o Output
	var gen uint64
	var live []*NodeState
	s.withEngine(func(e *Engine) {
		o = e.Step(now, in, m)
		s.noteLeaveAckLocked(in.From, o.SelfVersionSeen)
		gen, live = e.LiveNodesWatch()
	})
	if o.Reply != nil {
		out = AppendMessage(out, o.Reply)
		s.send(in.From, out)
	}
	s.sendPushes(o.Pushes)
	for _, a := range o.Streams {
		s.goStream(ctx, a)
	}
	s.live.publishGen(live, gen) // news of life, death or leave: at once
	return out
}

// send transmits one encoded message to the node advertised at to, sealed
// if a keyring is set; errors are counted, never fatal.
func (s *Server) send(to netip.AddrPort, b []byte) error { return s.sendTo(to, to, b) }

// sendTo transmits one encoded message to the address to, sealed for the
// node advertised at rcpt (the zero AddrPort: any node, for a Syn to a seed
// that is not a known node's address).
func (s *Server) sendTo(to, rcpt netip.AddrPort, b []byte) error {
	if s.sealer != nil && !s.cfg.SendPlaintext {
		// Send never retains b, so the sealed copy goes back to the pool:
		// encrypted gossip does not allocate a datagram per send.
		bp, _ := s.sealBufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		b = s.sealer.seal((*bp)[:0], b, rcpt)
		defer func() { *bp = b[:0]; s.sealBufs.Put(bp) }()
	}
	if len(b) > s.cfg.MaxDatagramSize {
		s.stats.sendErrors.Add(1)
		s.log.Warn("message exceeds the datagram budget: not sent", "to", to, "bytes", len(b))
		return fmt.Errorf("chitchat: message of %d bytes exceeds the %d-byte budget", len(b), s.cfg.MaxDatagramSize)
	}
	if err := s.conn.Send(to, b); err != nil {
		s.stats.sendErrors.Add(1)
		return err
	}
	s.stats.sent.Add(1)
	s.stats.sentBytes.Add(uint64(len(b)))
	return nil
}

func (s *Server) gossipLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.GossipInterval)
	defer t.Stop()
	var buf []byte
	for {
		buf = s.round(ctx, buf[:0]) // the first round runs at once
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round runs one gossip round and returns its scratch buffer.
func (s *Server) round(ctx context.Context, buf []byte) []byte {
	start := time.Now()
	var r Round
	var gen uint64
	var live []*NodeState
	var rcpts []netip.AddrPort
	s.withEngine(func(e *Engine) {
		r = e.Tick(start)
		gen, live = e.LiveNodesWatch()
		for _, to := range r.Targets {
			rcpts = append(rcpts, e.recipient(to))
		}
	})
	buf = AppendMessage(buf, r.Syn)
	for i, to := range r.Targets {
		if err := s.sendTo(to, rcpts[i], buf); err != nil {
			s.log.Debug("failed to gossip", "peer", to, "err", err)
		}
	}
	s.sendPushes(r.Pushes)
	for _, a := range r.Streams {
		s.goStream(ctx, a)
	}
	s.live.publishGen(live, gen) // a no-op unless the round published
	s.warnIfAlone(start, len(live))
	s.stats.rounds.Add(1)
	s.stats.roundNanos.Add(uint64(time.Since(start)))
	return buf
}

func (s *Server) dnsLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.DNSRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		seeds := s.seeds.resolve(ctx, s.log.Warn)
		s.withEngine(func(e *Engine) { e.SetSeeds(seeds) })
	}
}

// Self returns the node's identity (with the bound port if Config.ID.Addr
// had port 0). It changes only if the node had to reincarnate (a claim about
// it that could not be refuted: see docs/design/scale.md §6).
func (s *Server) Self() (id NodeID) {
	s.withEngine(func(e *Engine) { id = e.Self() })
	return id
}

// ClusterID returns the cluster's name.
func (s *Server) ClusterID() string { return s.cfg.ClusterID }

// LocalAddr returns the address the socket is bound to.
func (s *Server) LocalAddr() netip.AddrPort { return s.conn.LocalAddr() }

// Set sets key to value on this node. See Engine.Set.
func (s *Server) Set(key, value string) error {
	return s.write(func(e *Engine, _ time.Time) error { return e.Set(key, value) })
}

// write runs a mutation of the engine and pushes the news it made (the
// push is rate limited; held-back news rides the next round).
//
// On a stopped server it changes nothing and returns ErrClosed.
func (s *Server) write(f func(e *Engine, now time.Time) error) error {
	if s.stopped() {
		return ErrClosed
	}
	now := time.Now()
	var pushes []Envelope
	var err error
	s.withEngine(func(e *Engine) {
		if err = f(e, now); err == nil {
			pushes = e.Flush(now)
		}
	})
	s.sendPushes(pushes)
	return err
}

// sendPushes encodes and sends pushes.
func (s *Server) sendPushes(pushes []Envelope) {
	if len(pushes) == 0 {
		return
	}
	rcpts := make([]netip.AddrPort, len(pushes))
	if s.sealer != nil {
		// A push to a seed that is not a known node (a joining node's
		// announcement) is sealed for any node, like a Syn.
		s.withEngine(func(e *Engine) {
			for i, p := range pushes {
				rcpts[i] = e.recipient(p.To)
			}
		})
	}
	var buf []byte
	for i, p := range pushes {
		buf = AppendMessage(buf[:0], p.Msg)
		if err := s.sendTo(p.To, rcpts[i], buf); err != nil {
			s.log.Debug("failed to push", "peer", p.To, "err", err)
		}
	}
}

// SetWithTTL sets key to value, to be deleted after the tombstone grace
// period. See Engine.SetWithTTL.
func (s *Server) SetWithTTL(key, value string) error {
	return s.write(func(e *Engine, now time.Time) error { return e.SetWithTTL(now, key, value) })
}

// Delete deletes key on this node (a tombstone, collected after the
// grace period). It returns ErrNoSuchKey if the key did not exist,
// ErrClosed on a stopped server.
func (s *Server) Delete(key string) error {
	return s.write(func(e *Engine, now time.Time) error { return existed(e.Delete(now, key), key) })
}

// existed returns ErrNoSuchKey for a key that did not exist.
func existed(ok bool, key string) error {
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchKey, truncate(key, 64))
	}
	return nil
}

// DeleteAfterTTL schedules key for deletion after the tombstone grace
// period. It returns ErrNoSuchKey if the key did not exist, ErrClosed on a
// stopped server.
func (s *Server) DeleteAfterTTL(key string) error {
	return s.write(func(e *Engine, now time.Time) error { return existed(e.DeleteAfterTTL(now, key), key) })
}

// Get returns the value of key on this node.
func (s *Server) Get(key string) (v string, ok bool) {
	s.withEngine(func(e *Engine) { v, ok = e.Get(key) })
	return v, ok
}

// NodeState returns a copy of what this node knows of id.
func (s *Server) NodeState(id NodeID) (ns *NodeState, ok bool) {
	s.withEngine(func(e *Engine) { ns, ok = e.NodeState(id) })
	return ns, ok
}

// Snapshot returns a deep copy of this node's view of the cluster.
func (s *Server) Snapshot() (snap Snapshot) {
	now := time.Now()
	s.withEngine(func(e *Engine) { snap = e.Snapshot(now) })
	return snap
}

// LiveNodeIDs returns this node, then every live peer, in ID order.
func (s *Server) LiveNodeIDs() (ids []NodeID) {
	s.withEngine(func(e *Engine) { ids = e.LiveNodes() })
	return ids
}

// DeadNodeIDs returns the dead peers in ID order.
func (s *Server) DeadNodeIDs() (ids []NodeID) {
	s.withEngine(func(e *Engine) { ids = e.DeadNodes() })
	return ids
}

// WithEngine runs f with exclusive access to the engine (upstream's
// with_chitchat). f must not retain the engine nor call the Server.
func (s *Server) WithEngine(f func(e *Engine)) { s.withEngine(f) }

// ResetNodeStateIfUpdate replaces what this node knows of id by a state
// fetched by other means. See Engine.ResetNodeStateIfUpdate.
func (s *Server) ResetNodeStateIfUpdate(id NodeID, kvs map[string]VersionedValue, maxVersion, lastGCVersion uint64) error {
	return s.write(func(e *Engine, now time.Time) error {
		return e.ResetNodeStateIfUpdate(now, id, kvs, maxVersion, lastGCVersion)
	})
}

// Gossip sends a Syn to addr now, outside the round schedule.
func (s *Server) Gossip(addr netip.AddrPort) error {
	if s.stopped() {
		return ErrClosed
	}
	now := time.Now()
	addr = normalizeAddr(addr)
	var syn *Syn
	var rcpt netip.AddrPort
	s.withEngine(func(e *Engine) { syn, rcpt = e.CreateSyn(now), e.recipient(addr) })
	return s.sendTo(addr, rcpt, EncodeMessage(syn))
}

// LiveNodes returns the current value of the live-nodes watch: copies of the
// live nodes' states, filtered by Config.ExtraLivenessPredicate, in ID order.
// It is empty until the first round ends. The copies of one value share one
// allocation: to keep one node's state for long, keep its Clone.
func (s *Server) LiveNodes() []*NodeState {
	v, _, _, _ := s.live.load()
	return v
}

// WatchLiveNodes yields the live-nodes value at once, then every new value
// until ctx is done or the server stops. A value is published at the end of
// a round in which the live set or a live node's max version changed;
// a slow consumer sees only the latest (values coalesce). Heartbeat-only
// changes are never published. As with LiveNodes, keep a Clone of a node's
// state rather than a pointer into an old value.
func (s *Server) WatchLiveNodes(ctx context.Context) iter.Seq[[]*NodeState] {
	return s.live.seq(ctx)
}

// Subscribe calls fn with every key change (prefix stripped) of any node
// whose key starts with prefix, as this node learns of it. Deletions are not
// notified. fn runs on a goroutine of its own, in order, and may call the
// Server (but not Shutdown: Shutdown waits for fn). If fn falls
// Config.EventBuffer events behind, further events are dropped and counted
// in Stats.EventsDropped. The returned function unsubscribes: fn is not
// called again once it returns. Called from outside fn, it also waits for a
// call of fn in progress; called from inside fn, it returns at once.
func (s *Server) Subscribe(prefix string, fn func(KeyChange)) (cancel func()) {
	q := newEventQueue(s.cfg.EventBuffer)
	quit := make(chan struct{})
	var unsubscribe func()
	s.withEngine(func(e *Engine) {
		unsubscribe = e.Subscribe(prefix, func(ev KeyChange) {
			if !q.push(ev) {
				if c := s.stats.eventsDropped.Add(1); isPow2(c) {
					s.log.Warn("subscriber too slow: key change dropped", "prefix", prefix, "dropped", c)
				}
			}
		})
	})
	var wg sync.WaitGroup
	var dispatching atomic.Bool // fn is running
	s.subsWG.Add(1)
	wg.Go(func() {
		defer s.subsWG.Done()
		for {
			select {
			case <-q.ready:
				for ev, ok := q.pop(); ok; ev, ok = q.pop() {
					select {
					case <-quit: // cancelled while the event was queued
						return
					default:
					}
					dispatching.Store(true)
					fn(ev)
					dispatching.Store(false)
				}
			case <-quit:
				return
			case <-s.stop:
				return
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			s.withEngine(func(*Engine) { unsubscribe() })
			close(quit)
			if !dispatching.Load() {
				wg.Wait()
			}
		})
	}
}

// Stats counts a server's traffic and protocol events.
type Stats struct {
	MessagesSent     uint64
	BytesSent        uint64
	MessagesReceived uint64
	BytesReceived    uint64
	SendErrors       uint64 // failed or refused sends (transient socket errors, oversized messages)
	RecvErrors       uint64 // transient receive errors (connection refused, ENOBUFS, truncated datagrams)
	DecodeErrors     uint64 // datagrams dropped as malformed
	EventsDropped    uint64 // key changes dropped because a subscriber was too slow
	AuthFailures     uint64 // encrypted datagrams no key of the keyring opens
	Replays          uint64 // encrypted datagrams already received
	FutureCounters   uint64 // encrypted datagrams whose counter is more than 2 minutes ahead of our clock (clock skew, or a forgery)
	WrongCluster     uint64 // encrypted datagrams of another cluster
	PlaintextRefused uint64 // unencrypted datagrams refused (keyring set, AcceptPlaintext off)
	VersionMismatch  uint64 // datagrams of another protocol version refused
	Rounds           uint64
	RoundTime        time.Duration // total time spent in rounds (bookkeeping and sends)
	Heartbeat        uint64        // this node's heartbeat
	KnownNodes       int           // node states held, self included
	LiveNodes        int           // live nodes, self included
	DeadNodes        int
	LeftNodes        int
	KeyValues        int // non-deleted keys of this node
	Engine           EngineStats
	Push             PushStats
	Streams          StreamStats
}

type serverStats struct {
	sent, sentBytes, received, receivedBytes atomic.Uint64
	sendErrors, recvErrors, decodeErrors     atomic.Uint64
	eventsDropped, rounds, roundNanos        atomic.Uint64
	authFailures, replays, wrongCluster      atomic.Uint64
	futureCounters                           atomic.Uint64
	plaintextRefused, versionMismatch        atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		MessagesSent:     s.stats.sent.Load(),
		BytesSent:        s.stats.sentBytes.Load(),
		MessagesReceived: s.stats.received.Load(),
		BytesReceived:    s.stats.receivedBytes.Load(),
		SendErrors:       s.stats.sendErrors.Load(),
		RecvErrors:       s.stats.recvErrors.Load(),
		DecodeErrors:     s.stats.decodeErrors.Load(),
		EventsDropped:    s.stats.eventsDropped.Load(),
		AuthFailures:     s.stats.authFailures.Load(),
		Replays:          s.stats.replays.Load(),
		FutureCounters:   s.stats.futureCounters.Load(),
		WrongCluster:     s.stats.wrongCluster.Load(),
		PlaintextRefused: s.stats.plaintextRefused.Load(),
		VersionMismatch:  s.stats.versionMismatch.Load(),
		Rounds:           s.stats.rounds.Load(),
		RoundTime:        time.Duration(s.stats.roundNanos.Load()),
		Streams: StreamStats{
			Started:  s.streamStats.out.Load(),
			Answered: s.streamStats.in.Load(),
			Failed:   s.streamStats.failed.Load(),
			Bytes:    s.streamStats.bytes.Load(),
		},
	}
	s.withEngine(func(e *Engine) {
		self := e.selfState()
		st.Heartbeat = self.heartbeat
		st.KnownNodes = len(e.states)
		st.LiveNodes = len(e.LiveNodes())
		st.DeadNodes = len(e.DeadNodes())
		st.LeftNodes = len(e.LeftNodes())
		st.KeyValues = self.NumKeyValues()
		st.Engine = e.stats
		st.Push = e.push.stats
	})
	return st
}

func isPow2(n uint64) bool { return n&(n-1) == 0 }

// warnIfAlone warns when the node has seen no live peer for a minute, then
// after 2, 4, 8... minutes: a node that cannot reach its cluster (wrong
// seeds, a firewall, another cluster id or key) is otherwise silent.
func (s *Server) warnIfAlone(now time.Time, live int) {
	a := &s.alone
	if live > 1 {
		a.since, a.next = time.Time{}, 0
		return
	}
	if a.since.IsZero() {
		a.since, a.next = now, time.Minute
		return
	}
	if alone := now.Sub(a.since); alone >= a.next {
		s.log.Warn("no live peer: this node is alone", "for", alone.Round(time.Second), "seeds", s.cfg.Seeds,
			"cluster", s.cfg.ClusterID, "encrypted", s.sealer != nil)
		a.next *= 2
	}
}
