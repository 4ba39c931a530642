package chitchat

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gossipkit/chitchat-go/failuredetector"
)

// Engine is the gossip state machine of one node: its view of every node's
// state, the failure detector, and the Syn/SynAck/Ack protocol. It does no
// I/O, starts no goroutines and never reads the clock: callers pass the time
// in and send the messages it returns. The same inputs (and the same
// *rand.Rand) give the same outputs.
//
// An Engine is not safe for concurrent use; Server wraps one in a mutex.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	rng  *rand.Rand
	self NodeID
	// states holds every node state sorted by ID, self included: digests
	// are sorted too, so the hot paths merge the two instead of hashing
	// NodeIDs. nodes indexes the same states for random access.
	states    []*NodeState
	nodes     map[NodeID]*NodeState
	listeners *listeners
	// fd is keyed by NodeState.slot, a small integer unique to each state.
	fd       *failuredetector.Detector[uint64]
	nextSlot uint64
	gcHist   *gcHistory
	seeds    []netip.AddrPort // sorted, deduplicated
	maxKVOp  int              // largest encoded key-value op of the self node that fits a delta
	limits   Limits
	// neverLive queues the slots of nodes not yet seen live, oldest first:
	// the first to go when Limits.MaxNodes is reached. Entries of nodes since
	// seen live or removed are skipped lazily.
	neverLive []uint64

	// prevLive is what the live-nodes watch last published: every live node
	// (by slot, in ID order) and its max version, before the extra predicate.
	prevLive     []liveEntry
	published    []*NodeState
	publishedGen uint64

	stats EngineStats

	// Scratch buffers of the hot paths, reused from call to call.
	stale    []KeyValueMutation // computeDelta: one node's news
	cands    []candidate        // computeDelta: the nodes with news
	liveNext []liveEntry        // UpdateLiveness: the live set being built
	targets  targetSets         // Tick: the address sets targets are drawn from
	dw       deltaWriter        // computeDelta: its scratch buffers
}

// EngineStats counts protocol events of an Engine.
type EngineStats struct {
	BadClusterSent     uint64 // Syns from another cluster, answered with BadCluster
	BadClusterReceived uint64 // our Syns rejected by a peer of another cluster
	NodeResets         uint64 // node deltas applied after a reset
	NodeDeltasRejected uint64 // node deltas rejected (stale, from the future, inapplicable, malformed)
	RepliesTooLarge    uint64 // SynAcks not sent because our digest alone exceeds the datagram budget
	NodesRefused       uint64 // new nodes ignored because Limits.MaxNodes was reached
	NodesEvicted       uint64 // never-live nodes dropped to make room for new ones
	NodeDeltasRefused  uint64 // node deltas refused for exceeding Limits
}

// Errors returned by Engine and Server mutations.
var (
	// ErrValueTooLarge: the key-value could never fit in a datagram, so it
	// would never replicate. Upstream accepts it and stalls replication of
	// the node (docs/PROTOCOL.md §14).
	ErrValueTooLarge = errors.New("chitchat: key-value too large for a datagram")
	// ErrInvalidUTF8: keys and values must be valid UTF-8, as on the wire.
	ErrInvalidUTF8 = errors.New("chitchat: key or value is not valid UTF-8")
	// ErrInconsistentReset: ResetNodeStateIfUpdate was given a state that
	// would not move the node's (LastGCVersion, MaxVersion) forward.
	ErrInconsistentReset = errors.New("chitchat: reset would not advance the node state")
	// ErrTooManyKeys: the node already holds Limits.MaxKeysPerNode keys.
	ErrTooManyKeys = errors.New("chitchat: too many keys")
)

// LeftKey is the key a node sets when it leaves the cluster gracefully
// (Server.Leave): peers report it as left, not dead, as soon as they learn
// it, and garbage collect it after the dead-node grace period.
const LeftKey = "__chitchat.left"

// maxSafeVersion bounds versions and heartbeats accepted from peers: no
// honest node gets near it, and it keeps version arithmetic from
// overflowing.
const maxSafeVersion = 1 << 62

// NewEngine returns an engine for cfg with the self node's heartbeat at 1
// and initial set in order (versions 1..n). rng drives target selection and
// delta shuffling.
func NewEngine(cfg Config, rng *rand.Rand, initial []KeyValue) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID.Addr.Port() == 0 {
		return nil, fmt.Errorf("chitchat: ID.Addr %v: an Engine needs the port it is reached on", cfg.ID.Addr)
	}
	if rng == nil {
		return nil, errors.New("chitchat: NewEngine needs a *rand.Rand (e.g. rand.New(rand.NewPCG(seed, seed)))")
	}
	cfg = cfg.withDefaults()
	fd, err := failuredetector.New[uint64](cfg.FailureDetector)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		rng:       rng,
		self:      cfg.ID,
		nodes:     make(map[NodeID]*NodeState),
		listeners: newListeners(),
		fd:        fd,
		gcHist:    newGCHistory(gcHistorySize),
		limits:    cfg.Limits,
	}
	// The self node's ops carry its header; versions and GC versions of at
	// most 9 bytes each. An Ack (the largest delta budget) must hold both.
	ackBudget := cfg.MaxDatagramSize - envelopeSize - 1
	hdr := sizeNodeOp(e.self, math.MaxUint64, math.MaxUint64)
	for e.maxKVOp = ackBudget - hdr; e.maxKVOp > 0 && deltaBound(hdr+e.maxKVOp) > ackBudget; e.maxKVOp-- {
	}
	self := e.createNode(e.self)
	self.heartbeat = 1 // alive at once, so it answers Syns
	for _, kv := range initial {
		if err := e.Set(kv.Key, kv.Value); err != nil {
			return nil, fmt.Errorf("initial key %q: %w", kv.Key, err)
		}
	}
	static, _ := parseSeeds(cfg.Seeds)
	e.SetSeeds(static)
	return e, nil
}

// Self returns the identity of this node.
func (e *Engine) Self() NodeID { return e.self }

// ClusterID returns the cluster's name.
func (e *Engine) ClusterID() string { return e.cfg.ClusterID }

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats { return e.stats }

func (e *Engine) selfState() *NodeState { return e.nodes[e.self] }

// checkKV refuses what could never replicate.
func (e *Engine) checkKV(key, value string) error {
	if !utf8.ValidString(key) || !utf8.ValidString(value) {
		return ErrInvalidUTF8
	}
	if len(key) > e.limits.MaxKeySize || len(value) > e.limits.MaxValueSize {
		return fmt.Errorf("%w: key %q: %d-byte key, %d-byte value; limits are %d and %d",
			ErrValueTooLarge, truncate(key, 64), len(key), len(value), e.limits.MaxKeySize, e.limits.MaxValueSize)
	}
	if n := sizeKVOp(key, value, math.MaxUint64); n > e.maxKVOp {
		return fmt.Errorf("%w: key %q: %d bytes encoded, at most %d fit", ErrValueTooLarge, truncate(key, 64), n, e.maxKVOp)
	}
	self := e.selfState()
	if _, ok := self.kvs[key]; !ok && len(self.kvs) >= e.limits.MaxKeysPerNode {
		return fmt.Errorf("%w: the node holds %d keys (Limits.MaxKeysPerNode)", ErrTooManyKeys, len(self.kvs))
	}
	if self.maxVersion >= maxSafeVersion {
		return fmt.Errorf("%w: version space exhausted", ErrValueTooLarge)
	}
	return nil
}

// Set sets key to value on the self node. Setting the value a key already
// holds is a no-op (no new version).
func (e *Engine) Set(key, value string) error {
	if err := e.checkKV(key, value); err != nil {
		return err
	}
	e.selfState().set(key, value)
	return nil
}

// SetWithTTL sets key to value on the self node with status
// DeleteAfterTTL: readable everywhere until collected
// MarkedForDeletionGracePeriod after now. Setting the same value again does
// not extend the TTL.
func (e *Engine) SetWithTTL(now time.Time, key, value string) error {
	if err := e.checkKV(key, value); err != nil {
		return err
	}
	e.selfState().setWithTTL(now, key, value)
	return nil
}

// Delete marks key of the self node as deleted. It reports whether the key
// existed (a missing key is logged and ignored, as upstream).
func (e *Engine) Delete(now time.Time, key string) bool {
	ok := e.selfState().delete(now, key)
	if !ok {
		e.log.Warn("key does not exist in the node's state and could not be deleted", "key", key)
	}
	return ok
}

// DeleteAfterTTL schedules key of the self node for deletion: it stays
// readable until collected MarkedForDeletionGracePeriod after now. It
// reports whether the key existed.
func (e *Engine) DeleteAfterTTL(now time.Time, key string) bool {
	ok := e.selfState().deleteAfterTTL(now, key)
	if !ok {
		e.log.Warn("key does not exist in the node's state and could not be deleted", "key", key)
	}
	return ok
}

// Get returns the value of key on the self node.
func (e *Engine) Get(key string) (string, bool) { return e.selfState().Get(key) }

// NodeState returns a copy of the state of id.
func (e *Engine) NodeState(id NodeID) (*NodeState, bool) {
	ns, ok := e.nodes[id]
	if !ok {
		return nil, false
	}
	return ns.Clone(), true
}

// NodeIDs returns every node known, self included, in ID order.
func (e *Engine) NodeIDs() []NodeID {
	ids := make([]NodeID, len(e.states))
	for i, ns := range e.states {
		ids[i] = ns.id
	}
	return ids
}

// Subscribe calls fn for every key starting with prefix written to any node
// state (the prefix is stripped from KeyChange.Key). Deletions are not
// notified. fn runs synchronously inside the Engine call that applied the
// write and must not call back into the Engine. The returned function
// unsubscribes.
func (e *Engine) Subscribe(prefix string, fn func(KeyChange)) (cancel func()) {
	return e.listeners.subscribe(prefix, fn)
}

// SetSeeds replaces the seed addresses (the Server feeds DNS results here).
func (e *Engine) SetSeeds(seeds []netip.AddrPort) {
	s := make([]netip.AddrPort, 0, len(seeds))
	for _, a := range seeds {
		s = append(s, normalizeAddr(a))
	}
	slices.SortFunc(s, netip.AddrPort.Compare)
	e.seeds = slices.Compact(s)
	e.targets.valid = false
}

// Seeds returns the current seed addresses.
func (e *Engine) Seeds() []netip.AddrPort { return slices.Clone(e.seeds) }

// createNode adds an empty state for id. A node created again after garbage
// collection is forgotten by the GC history.
func (e *Engine) createNode(id NodeID) *NodeState {
	i, _ := slices.BinarySearchFunc(e.states, id, compareState)
	return e.createNodeAt(i, id)
}

// createNodeAt is createNode when the caller knows id's index in states.
func (e *Engine) createNodeAt(i int, id NodeID) *NodeState {
	// A name decoded from a digest shares the datagram's memory (see
	// decodeDigest): the state keeps a copy of its own.
	id.Name = strings.Clone(id.Name)
	ns := newNodeState(id, e.listeners)
	e.nextSlot++
	ns.slot = e.nextSlot
	e.nodes[id] = ns
	e.states = slices.Insert(e.states, i, ns)
	e.targets.valid = false
	e.gcHist.pop(id)
	if id != e.self {
		e.neverLive = append(e.neverLive, ns.slot)
		if len(e.neverLive) > 2*e.limits.MaxNodes {
			e.compactNeverLive()
		}
	}
	return ns
}

// compactNeverLive drops the entries makeRoom would skip (nodes since seen
// live or removed): otherwise the queue grows by one entry for every node
// ever created. Slots grow with creation, so the queue is in slot order, and
// every node present and never live still has its entry.
func (e *Engine) compactNeverLive() {
	q := e.neverLive[:0]
	for _, ns := range e.states {
		if ns.id != e.self && !ns.everLive {
			q = append(q, ns.slot)
		}
	}
	slices.Sort(q)
	e.neverLive = q
}

// makeRoom frees a place for a new node when Limits.MaxNodes is reached, by
// dropping the oldest node never seen live (invented ids never heartbeat
// convincingly). It reports whether there is room.
func (e *Engine) makeRoom() bool {
	if len(e.states) < e.limits.MaxNodes {
		return true
	}
	for len(e.neverLive) > 0 {
		slot := e.neverLive[0]
		e.neverLive = e.neverLive[1:]
		for _, ns := range e.states {
			if ns.slot == slot {
				if ns.everLive {
					break
				}
				e.stats.NodesEvicted++
				e.dropNode(ns)
				return true
			}
		}
	}
	e.stats.NodesRefused++
	return false
}

func compareState(ns *NodeState, id NodeID) int { return ns.id.Compare(id) }

// removeNode drops the state of a garbage-collected node and remembers its
// heartbeat, so that stale gossip cannot resurrect it.
func (e *Engine) removeNode(id NodeID) {
	ns, ok := e.nodes[id]
	if !ok {
		return
	}
	e.dropNode(ns)
	e.gcHist.put(id, ns.heartbeat)
}

// dropNode forgets ns entirely.
func (e *Engine) dropNode(ns *NodeState) {
	delete(e.nodes, ns.id)
	if i, found := slices.BinarySearchFunc(e.states, ns.id, compareState); found {
		e.states = slices.Delete(e.states, i, i+1)
	}
	e.targets.valid = false
	e.fd.Forget(ns.slot)
}

// scheduledForDeletion reports whether ns has been dead (or left) long
// enough to be left out of our digests and deltas: the detector's rule, on
// the mirrored time of death.
func (e *Engine) scheduledForDeletion(ns *NodeState, now time.Time) bool {
	gone := ns.deadSince
	if ns.left {
		gone = ns.leftAt
	}
	return !gone.IsZero() && e.cfg.FailureDetector.ScheduledForDeletion(gone, now)
}

// CreateSyn returns a Syn carrying our digest. It does not change state.
func (e *Engine) CreateSyn(now time.Time) *Syn {
	return &Syn{ClusterID: e.cfg.ClusterID, Digest: e.digest(now)}
}

// digest returns our view of every node not scheduled for deletion.
func (e *Engine) digest(now time.Time) Digest {
	d := make(Digest, 0, len(e.states))
	for _, ns := range e.states {
		if e.scheduledForDeletion(ns, now) {
			continue
		}
		d = append(d, DigestEntry{ID: ns.id, NodeDigest: ns.digest()})
	}
	return d
}

// Process handles one message received from a peer and returns the reply to
// send back to the datagram's source address, or nil.
//
// Every message, whatever it is, increments the self heartbeat. A Syn from
// our cluster is answered with our digest and what the peer lacks, within
// the datagram budget; a SynAck is applied and answered with what the peer
// lacks; an Ack is applied.
func (e *Engine) Process(now time.Time, m Message) Message {
	e.selfState().incHeartbeat()
	switch m := m.(type) {
	case *Syn:
		if m.ClusterID != e.cfg.ClusterID {
			e.stats.BadClusterSent++
			e.log.Warn("received SYN message addressed to a different cluster", "cluster", m.ClusterID)
			return &BadCluster{}
		}
		e.reportHeartbeats(now, m.Digest)
		d := e.digest(now)
		budget := e.cfg.MaxDatagramSize - envelopeSize - 1 - sizeDigest(d)
		if budget < deltaBound(0) {
			e.stats.RepliesTooLarge++
			e.log.Warn("digest too large for a datagram: not answering", "nodes", len(d), "digest_bytes", sizeDigest(d))
			return nil
		}
		return &SynAck{Digest: d, Delta: e.computeDelta(now, m.Digest, budget)}
	case *SynAck:
		e.reportHeartbeats(now, m.Digest)
		e.applyDelta(now, &m.Delta)
		return &Ack{Delta: e.computeDelta(now, m.Digest, e.cfg.MaxDatagramSize-envelopeSize-1)}
	case *Ack:
		e.applyDelta(now, &m.Delta)
	case *BadCluster:
		e.stats.BadClusterReceived++
		e.log.Warn("message rejected by peer: wrong cluster")
	}
	return nil
}

// reportHeartbeats records the heartbeats of a digest, creating the nodes
// it is the first to mention, unless they were garbage collected with a
// heartbeat at least as large. Both the digest and states are sorted by ID:
// one merge pass, no hashing.
func (e *Engine) reportHeartbeats(now time.Time, d Digest) {
	i := 0
	for k := range d {
		id := d[k].ID
		order := 1 // states[i] compared to id; never 0 past the end
		for ; i < len(e.states); i++ {
			if e.states[i].id == id { // the common case, and cheaper than Compare
				order = 0
				break
			}
			if order = e.states[i].id.Compare(id); order >= 0 {
				break
			}
		}
		if id == e.self {
			continue
		}
		var ns *NodeState
		if order == 0 {
			ns = e.states[i]
		} else {
			if gcHeartbeat, collected := e.gcHist.peek(id); collected && gcHeartbeat >= d[k].Heartbeat {
				continue
			}
			if d[k].Heartbeat > maxSafeVersion || d[k].MaxVersion > maxSafeVersion || d[k].LastGCVersion > maxSafeVersion {
				continue
			}
			if len(e.states) >= e.limits.MaxNodes {
				if !e.makeRoom() {
					continue
				}
				i, _ = slices.BinarySearchFunc(e.states, id, compareState)
			}
			ns = e.createNodeAt(i, id)
		}
		if ns.trySetHeartbeat(d[k].Heartbeat) && !ns.left {
			e.fd.ReportHeartbeat(ns.slot, now)
		}
	}
}

// applyDelta applies every node delta to the nodes we know (a delta never
// creates a node: the digest before it did) and calls the catch-up callback
// once if any node was reset.
func (e *Engine) applyDelta(now time.Time, d *Delta) {
	reset := false
	for i := range d.Nodes {
		nd := &d.Nodes[i]
		ns, ok := e.nodes[nd.ID]
		if !ok {
			continue
		}
		if !e.withinLimits(ns, nd) {
			e.stats.NodeDeltasRefused++
			e.log.Warn("node delta refused: exceeds limits", "node", nd.ID)
			continue
		}
		status := deltaReject
		if nd.wellFormed() {
			status = ns.classify(nd)
		}
		if status == deltaReject {
			e.stats.NodeDeltasRejected++
			e.log.Debug("node delta rejected", "node", nd.ID, "from", nd.FromVersionExcluded,
				"last_gc_version", nd.LastGCVersion, "max_version", nd.MaxVersion,
				"local_max_version", ns.maxVersion, "local_last_gc_version", ns.lastGCVersion)
			continue
		}
		before := ns.monotonic()
		ns.applyDelta(now, nd, status)
		if lessMonotonic(ns.monotonic(), before) {
			panic(fmt.Sprintf("chitchat: invariant violated: node %v: (last_gc_version, max_version) went from %v to %v",
				nd.ID, before, ns.monotonic()))
		}
		if status == deltaApplyAfterReset {
			reset = true
			e.stats.NodeResets++
			e.log.Info("resetting node state", "node", nd.ID, "last_gc_version", nd.LastGCVersion)
		}
		e.checkLeft(now, ns)
	}
	if reset && e.cfg.CatchupCallback != nil {
		e.log.Info("executing catch-up callback")
		e.cfg.CatchupCallback()
	}
}

// withinLimits reports whether applying nd to ns keeps ns within Limits.
func (e *Engine) withinLimits(ns *NodeState, nd *NodeDelta) bool {
	added := 0
	for _, kv := range nd.KeyValues {
		if len(kv.Key) > e.limits.MaxKeySize || len(kv.Value) > e.limits.MaxValueSize {
			return false
		}
		if _, ok := ns.kvs[kv.Key]; !ok {
			added++
		}
	}
	if nd.FromVersionExcluded == 0 && nd.LastGCVersion > ns.lastGCVersion {
		// Possibly a reset, which starts from nothing.
		return len(nd.KeyValues) <= e.limits.MaxKeysPerNode
	}
	return len(ns.kvs)+added <= e.limits.MaxKeysPerNode
}

// checkLeft notices that a peer has set LeftKey.
func (e *Engine) checkLeft(now time.Time, ns *NodeState) {
	if ns.left || ns.id == e.self {
		return
	}
	if _, ok := ns.Get(LeftKey); !ok {
		return
	}
	ns.left = true
	ns.leftAt = now
	ns.live = false
	ns.deadSince = time.Time{}
	e.targets.valid = false
	e.fd.Forget(ns.slot)
	e.log.Info("node left", "node", ns.id)
}

// candidate is a node with news for a peer, ranked for the delta.
type candidate struct {
	ns      *NodeState
	from    uint64
	unknown bool   // the peer knows nothing of it (from == 0)
	rank    uint64 // max version if unknown, number of stale entries if known
}

// computeDelta returns what the peer that sent digest lacks, within budget
// bytes of encoding (docs/PROTOCOL.md §4).
//
// Nodes the peer knows nothing of go first, smallest state first (small
// states, such as a metastore's, spread before bloated ones); then known
// nodes, most stale entries first. Ties are shuffled. Each node's entries go
// in version order, so a node cut short by the budget is still a valid
// prefix. Unlike upstream, a node whose next entry does not fit does not end
// the delta: smaller news of other nodes still fill the datagram, so one
// large value cannot starve everyone else (docs/PROTOCOL.md §14).
func (e *Engine) computeDelta(now time.Time, peer Digest, budget int) Delta {
	cands := e.cands[:0]
	j := 0
	for _, ns := range e.states {
		id := ns.id
		order := 1 // peer[j] compared to id; never 0 past the end
		for ; j < len(peer); j++ {
			if peer[j].ID == id { // the common case, and cheaper than Compare
				order = 0
				break
			}
			if order = peer[j].ID.Compare(id); order >= 0 {
				break
			}
		}
		var known NodeDigest
		if order == 0 {
			known = peer[j].NodeDigest
		}
		if ns.maxVersion <= known.MaxVersion || e.scheduledForDeletion(ns, now) {
			continue
		}
		from := known.MaxVersion
		if known.LastGCVersion < ns.lastGCVersion && known.MaxVersion < ns.lastGCVersion {
			// The peer may have missed tombstones we already collected: it
			// must drop what it has of the node and start over.
			from = 0
			e.log.Info("node to reset", "node", id, "last_gc_version", ns.lastGCVersion, "peer_max_version", known.MaxVersion)
		}
		c := candidate{ns: ns, from: from, unknown: from == 0}
		if c.unknown {
			c.rank = ns.maxVersion
		} else {
			c.rank = uint64(ns.numStale(from))
		}
		cands = append(cands, c)
	}
	rankOrder := func(a, b candidate) int {
		if a.unknown != b.unknown {
			if a.unknown {
				return -1
			}
			return 1
		}
		if a.unknown {
			return cmp.Compare(a.rank, b.rank)
		}
		return cmp.Compare(b.rank, a.rank)
	}
	slices.SortStableFunc(cands, rankOrder)
	for i := 0; i < len(cands); {
		k := i + 1
		for k < len(cands) && rankOrder(cands[i], cands[k]) == 0 {
			k++
		}
		bucket := cands[i:k]
		e.rng.Shuffle(len(bucket), func(a, b int) { bucket[a], bucket[b] = bucket[b], bucket[a] })
		i = k
	}

	w := &e.dw
	w.reset(budget)
	const smallestNews = 14 + 6 // a node header and a key-value can't be smaller
	staleUsed := 0
	for _, c := range cands {
		if !w.fits(smallestNews) {
			break
		}
		ns := c.ns
		hdr := sizeNodeOp(ns.id, ns.lastGCVersion, c.from)
		e.stale = ns.appendStaleKeyValues(e.stale[:0], c.from)
		stale := e.stale
		staleUsed = max(staleUsed, len(stale))
		if len(stale) == 0 {
			// Only collected tombstones are newer: tell the peer the version.
			if w.fits(hdr + sizeMaxOp(ns.maxVersion)) {
				w.addNode(ns.id, ns.lastGCVersion, c.from)
				w.addMax(ns.maxVersion)
			}
			continue
		}
		if !w.fits(hdr + sizeKVOp(stale[0].Key, stale[0].Value, stale[0].Version)) {
			continue
		}
		w.addNode(ns.id, ns.lastGCVersion, c.from)
		for _, kv := range stale {
			if !w.fits(sizeKVOp(kv.Key, kv.Value, kv.Version)) {
				break
			}
			w.addKV(kv)
		}
	}
	// Keep the scratch buffers, not what they point to.
	clear(e.stale[:staleUsed])
	clear(cands)
	e.cands = cands[:0]
	return w.finish()
}

// Round is what a gossip round asks the caller to send: Syn to each target.
type Round struct {
	Targets []netip.AddrPort
	Syn     *Syn
}

// Tick runs one gossip round: it picks the targets, increments the self
// heartbeat, collects expired tombstones, builds the Syn, then updates
// liveness (publishing the live-nodes watch) and collects dead nodes.
func (e *Engine) Tick(now time.Time) Round {
	t := e.targetSets()
	nodes, deadTarget, seedTarget := selectTargets(e.rng, t.peers, t.live, t.dead, t.seeds)
	if deadTarget.IsValid() {
		nodes = append(nodes, deadTarget)
	}
	if seedTarget.IsValid() {
		nodes = append(nodes, seedTarget)
	}
	e.selfState().incHeartbeat()
	e.GCKeys(now)
	syn := e.CreateSyn(now)
	e.UpdateLiveness(now)
	return Round{Targets: nodes, Syn: syn}
}

// targetSets caches the sorted, deduplicated address sets Tick draws gossip
// targets from: the live peers, the dead peers, the seeds other than
// ourselves, and every peer while none is live. They change only when a state is added or removed, a
// peer's liveness changes, or the seeds change, and valid is cleared then;
// rebuilding them every round (sorting thousands of addresses) was the
// largest cost of a round.
type targetSets struct {
	valid                    bool
	peers, live, dead, seeds []netip.AddrPort
}

// targetSets returns the address sets, rebuilt if they are stale.
func (e *Engine) targetSets() *targetSets {
	t := &e.targets
	if t.valid {
		return t
	}
	t.live, t.dead = t.live[:0], t.dead[:0]
	for _, ns := range e.states {
		if ns.id == e.self {
			continue
		}
		if ns.live {
			t.live = append(t.live, ns.id.Addr)
		}
		if !ns.deadSince.IsZero() && !ns.left {
			t.dead = append(t.dead, ns.id.Addr)
		}
	}
	t.live, t.dead = addrSet(t.live), addrSet(t.dead)
	// Targets are drawn from every peer only while none is live: only then
	// is the set of every peer worth its memory.
	t.peers = nil
	if len(t.live) == 0 {
		for _, ns := range e.states {
			if ns.id != e.self {
				t.peers = append(t.peers, ns.id.Addr)
			}
		}
		t.peers = addrSet(t.peers)
	}
	t.seeds = t.seeds[:0]
	for _, s := range e.seeds {
		if s != e.self.Addr {
			t.seeds = append(t.seeds, s)
		}
	}
	t.valid = true
	return t
}

func addrSet(s []netip.AddrPort) []netip.AddrPort {
	slices.SortFunc(s, netip.AddrPort.Compare)
	return slices.Compact(s)
}

// GCKeys removes, from every node state, tombstones and TTL'd keys marked at
// least MarkedForDeletionGracePeriod before now.
func (e *Engine) GCKeys(now time.Time) {
	for _, ns := range e.states {
		ns.gcKeys(now, e.cfg.MarkedForDeletionGracePeriod)
	}
}

// liveEntry is one node of the live-nodes watch, before the predicate.
type liveEntry struct {
	slot       uint64
	maxVersion uint64
}

// UpdateLiveness re-evaluates every peer with the failure detector,
// publishes the live-nodes watch if the live set or a live node's max
// version changed, and garbage collects nodes dead for longer than the
// dead-node grace period.
//
// Invariant: for every peer state, ns.live == fd.IsLive(ns.slot) and
// ns.deadSince is the detector's time of death (zero when not dead). The
// detector's live and dead sets change only here, so mirroring them here
// keeps the hot paths (digests, deltas, target selection) off its maps.
func (e *Engine) UpdateLiveness(now time.Time) {
	current := e.liveNext[:0]
	for _, ns := range e.states {
		if ns.id == e.self {
			current = append(current, liveEntry{ns.slot, ns.maxVersion})
			continue
		}
		if ns.left {
			// Left nodes are out of the failure detector's hands (see
			// checkLeft); they are collected after the grace period.
			continue
		}
		e.fd.UpdateLiveness(ns.slot, now)
		wasLive, wasDead := ns.live, !ns.deadSince.IsZero()
		ns.live = e.fd.IsLive(ns.slot)
		ns.everLive = ns.everLive || ns.live
		ns.deadSince, _ = e.fd.TimeOfDeath(ns.slot)
		if ns.live != wasLive || ns.deadSince.IsZero() == wasDead {
			e.targets.valid = false
		}
		if ns.live != wasLive {
			if ns.live {
				e.log.Info("node is live", "node", ns.id)
			} else {
				e.log.Info("node is dead", "node", ns.id)
			}
		}
		if ns.live {
			current = append(current, liveEntry{ns.slot, ns.maxVersion})
		}
	}
	if !slices.Equal(current, e.prevLive) {
		published := make([]*NodeState, 0, len(current))
		for _, ns := range e.states {
			if ns.id != e.self && (!ns.live || ns.left) {
				continue
			}
			if e.cfg.ExtraLivenessPredicate != nil && !e.cfg.ExtraLivenessPredicate(ns) {
				continue
			}
			published = append(published, ns.Clone())
		}
		// The previous value's buffer becomes the next round's scratch.
		e.prevLive, e.liveNext = current, e.prevLive
		e.published = published
		e.publishedGen++
	} else {
		e.liveNext = current
	}
	collected := e.fd.GarbageCollect(now)
	var gone []NodeID // removed after the scan, which removal would disturb
	for _, ns := range e.states {
		if slices.Contains(collected, ns.slot) || (ns.left && e.cfg.FailureDetector.GracePeriodOver(ns.leftAt, now)) {
			gone = append(gone, ns.id)
		}
	}
	for _, id := range gone {
		e.log.Info("node garbage collected", "node", id)
		e.removeNode(id)
	}
}

// LiveNodesWatch returns the live-nodes watch value and its generation,
// which grows by one at each publication. The value is a list of copies of
// the live nodes' states (filtered by Config.ExtraLivenessPredicate) in ID
// order, published at the end of a round in which the live set or a live
// node's max version changed. Before the first round it is empty.
func (e *Engine) LiveNodesWatch() (generation uint64, nodes []*NodeState) {
	return e.publishedGen, e.published
}

// LiveNodes returns the self node, then every peer the failure detector
// deems live, in ID order. The extra liveness predicate is not applied.
func (e *Engine) LiveNodes() []NodeID {
	live := []NodeID{e.self}
	for _, ns := range e.states {
		if ns.live && !ns.left {
			live = append(live, ns.id)
		}
	}
	return live
}

// LeftNodes returns the peers that left gracefully (Server.Leave), in ID
// order, until they are garbage collected.
func (e *Engine) LeftNodes() []NodeID {
	var left []NodeID
	for _, ns := range e.states {
		if ns.left {
			left = append(left, ns.id)
		}
	}
	return left
}

// DeadNodes returns the nodes the failure detector deems dead, in ID order.
// Newly discovered nodes are dead until three increasing heartbeats have
// been observed (docs/PROTOCOL.md §7.3).
func (e *Engine) DeadNodes() []NodeID {
	var dead []NodeID
	for _, ns := range e.states {
		if !ns.deadSince.IsZero() && !ns.left {
			dead = append(dead, ns.id)
		}
	}
	return dead
}

// ScheduledForDeletionNodes returns the dead nodes left out of digests and
// deltas, in ID order.
func (e *Engine) ScheduledForDeletionNodes(now time.Time) []NodeID {
	var s []NodeID
	for _, ns := range e.states {
		if e.scheduledForDeletion(ns, now) {
			s = append(s, ns.id)
		}
	}
	return s
}

// ResetNodeStateIfUpdate replaces what we know of id by a state fetched by
// other means (upstream's fast catch-up, typically after the catch-up
// callback fired), unless ours is already as recent. Keys absent from kvs are
// removed without notification; written keys notify listeners. A node
// recently garbage collected is not recreated. The node's max version
// becomes the largest of its current one and the versions in kvs; its last
// GC version becomes lastGCVersion.
//
// Upstream panics when the result would not advance the node's
// (LastGCVersion, MaxVersion); this returns ErrInconsistentReset and changes
// nothing.
func (e *Engine) ResetNodeStateIfUpdate(now time.Time, id NodeID, kvs map[string]VersionedValue, maxVersion, lastGCVersion uint64) error {
	ns, ok := e.nodes[id]
	if !ok {
		if _, collected := e.gcHist.peek(id); collected {
			e.log.Info("skip reset_node_state because the node was recently garbage collected", "node", id)
			return nil
		}
		ns = e.createNode(id)
	}
	if ns.maxVersion >= maxVersion {
		e.log.Info("attempted to reset node, but node is already up to date", "node", id)
		return nil
	}
	if maxVersion < ns.lastGCVersion {
		e.log.Warn("attempted to reset node with an obsolete state", "node", id)
		return nil
	}
	newMax := ns.maxVersion
	for _, v := range kvs {
		newMax = max(newMax, v.Version)
	}
	before := ns.monotonic()
	if !lessMonotonic(before, [2]uint64{lastGCVersion, newMax}) {
		return fmt.Errorf("%w: node %v: (last_gc_version, max_version) %v → (%d, %d)",
			ErrInconsistentReset, id, before, lastGCVersion, newMax)
	}
	if id != e.self {
		e.fd.EnsureWindow(ns.slot)
	}
	for _, k := range slices.Sorted(maps.Keys(kvs)) {
		v := kvs[k]
		if v.Status != StatusSet && v.MarkedAt.IsZero() {
			v.MarkedAt = now
		}
		ns.setVersioned(k, v)
	}
	for k := range ns.kvs {
		if _, keep := kvs[k]; !keep {
			delete(ns.kvs, k)
		}
	}
	ns.lastGCVersion = lastGCVersion
	e.checkLeft(now, ns)
	return nil
}

// Snapshot is a consistent, deep copy of an engine's view of the cluster.
type Snapshot struct {
	ClusterID string
	Self      NodeID
	// Nodes holds every known node state in ID order, self included.
	Nodes []*NodeState
	// Live lists the self node first, then live peers in ID order.
	Live []NodeID
	// Dead lists dead peers in ID order.
	Dead []NodeID
	// Left lists the peers that left gracefully, in ID order.
	Left []NodeID
	// ScheduledForDeletion lists the dead peers no longer gossiped.
	ScheduledForDeletion []NodeID
	// Seeds are the current seed addresses.
	Seeds []netip.AddrPort
}

// Snapshot returns a deep copy of the engine's view.
func (e *Engine) Snapshot(now time.Time) Snapshot {
	s := Snapshot{
		ClusterID:            e.cfg.ClusterID,
		Self:                 e.self,
		Nodes:                make([]*NodeState, 0, len(e.states)),
		Live:                 e.LiveNodes(),
		Dead:                 e.DeadNodes(),
		Left:                 e.LeftNodes(),
		ScheduledForDeletion: e.ScheduledForDeletionNodes(now),
		Seeds:                e.Seeds(),
	}
	for _, ns := range e.states {
		s.Nodes = append(s.Nodes, ns.Clone())
	}
	return s
}

// Node returns the state of id in the snapshot.
func (s *Snapshot) Node(id NodeID) (*NodeState, bool) {
	i, ok := slices.BinarySearchFunc(s.Nodes, id, func(ns *NodeState, id NodeID) int { return ns.id.Compare(id) })
	if !ok {
		return nil, false
	}
	return s.Nodes[i], true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
