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
	// NodeIDs, and a lookup is a binary search (node): a map beside it
	// cost about 145 bytes per node held (issue 13).
	states []*NodeState
	// selfNS is the self node's state (states holds it too).
	selfNS *NodeState
	// byRef holds the same states sorted by ref: the ring that digest
	// coverage and push trees walk (docs/design/scale.md §1).
	byRef []*NodeState
	// cursor is where the next Syn's coverage starts on the ring.
	cursor uint64
	// markGen tags the nodes listed explicitly in the message being built
	// or checked (NodeState.mark).
	markGen uint32
	// view is the scratch peer view of the message being handled.
	view peerView
	// padSyns pads the Syns of a node that knows few others (set by a
	// Server that gossips in plaintext).
	padSyns bool
	// round counts gossip rounds (Tick).
	round uint32
	// partialCover: our last Syn covered part of the ring only; ring
	// monitors are then in force (monitor.go).
	partialCover bool
	// watched are the nodes we monitor, set at each liveness update
	// (watchPredecessors); nil entries when there are fewer.
	watched [monitorCount]*NodeState
	// contactAt[i] is the time of the last word from watched[i] itself
	// (confirm.go).
	contactAt [monitorCount]time.Time
	tune      tuning
	push      pushState
	// streams schedules stream exchanges (stream.go).
	streams streamState
	// events is the log of membership events (events.go).
	events eventRing
	// ringNodes is route's scratch list of live nodes in a range.
	ringNodes []*NodeState
	// liveDirty: a verdict changed since the live-nodes watch was last
	// published.
	liveDirty bool
	listeners *listeners
	// fd is keyed by NodeState.slot, unique to each state (fdslots.go).
	fd      *slotDetector
	gcHist  *gcHistory
	seeds   []netip.AddrPort // sorted, deduplicated
	maxKVOp int              // largest encoded key-value op of the self node that fits a delta
	limits  Limits
	// unjudged lists the nodes created since the last judgeNew (at most
	// 1,024: the rest wait for the round).
	unjudged []*NodeState
	// neverLive queues the nodes not yet seen live, oldest first (in slot
	// order): the first to go when Limits.MaxNodes is reached. Entries of
	// nodes since seen live or removed are skipped lazily, and dropped when
	// they outnumber the others (compactNeverLive), or at once when nodes
	// are garbage collected (UpdateLiveness): an entry holds its state.
	neverLive []*NodeState
	// numNeverLive counts the states (self excluded) never seen live.
	numNeverLive int
	// noVictim: makeRoom found nothing to evict beyond the never-live
	// queue since the last liveness update or node creation; it does not
	// scan again until one (a flood would otherwise cost a scan per
	// entry).
	noVictim bool
	// probe is a node dead here whose hearsay rise settling held back
	// since the last round (one of probes such, Engine.holdBack): our next
	// round gossips with it (Engine.probeTarget).
	probe  NodeID
	probes int
	// probed is the node probeTarget returned this round: our Syn lists
	// it, so that it sees the heartbeat we hold (synDigest).
	probed NodeID
	// confirming holds the deaths we are confirming by asking the node
	// (confirm.go), at most confirmMax; answers measures how many of our
	// Syns get an answer.
	confirming []confirmation
	answers    answerRate
	// forgot holds, for each node whose view we forgot (forgetView), the
	// peer's max version claimed by the delta that made us, and when.
	// Entries go with their node (dropNode).
	forgot map[*NodeState]forgotView
	// reincarnateClaim, when not 0, is a claim about the self node too
	// large to refute, seen while handling the current message: the node
	// reincarnates once the message is handled (settle), never in the
	// middle of a walk over states or byRef.
	reincarnateClaim uint64

	// lastLive is what the live-nodes watch last published: a copy of the
	// state of every live node, self included, in ID order, before the
	// extra predicate. A copy shares its state's identity (NodeState.id),
	// whose address tells a state from a later one of the same ID: the
	// copy keeps the identity it points to alive, so it is never reused.
	lastLive []NodeState
	// lastSelf is the self identity when lastLive was published.
	lastSelf *NodeID
	// published is the watch value: pointers into lastLive that pass the
	// predicate, made when publishPending is set (LiveNodesWatch).
	published      []*NodeState
	publishPending bool
	publishedGen   uint64

	stats EngineStats

	// Scratch buffers of the hot paths, reused from call to call.
	stale   []KeyValueMutation // computeDelta: one node's news
	cands   []candidate        // computeDelta: the nodes with news
	targets targetSets         // Tick: the address sets targets are drawn from
	adv     advCount           // advertisedCount's cache
	dw      deltaWriter        // computeDelta: its scratch buffers
}

// EngineStats counts protocol events of an Engine.
type EngineStats struct {
	BadClusterSent     uint64 // Syns from another cluster, answered with BadCluster
	BadClusterReceived uint64 // our Syns rejected by a peer of another cluster
	NodeResets         uint64 // node deltas applied after a reset
	NodeDeltasRejected uint64 // node deltas rejected (stale, from the future, inapplicable, malformed)
	NodesRefused       uint64 // new nodes ignored because Limits.MaxNodes was reached
	NodesEvicted       uint64 // never-live nodes dropped to make room for new ones
	NodeDeltasRefused  uint64 // node deltas refused for exceeding Limits
	ClaimsRefused      uint64 // digest entries refused: heartbeat or version above 2^62, or a name above Limits.MaxNodeNameSize
	SelfDeltasIgnored  uint64 // node deltas about this node (never applied)
	Refutations        uint64 // claims about this node above its own state, refuted by moving past them
	Reincarnations     uint64 // claims too large to refute, answered with a new generation
	MessagesRefused    uint64 // messages handed to Step that no decoder produces (an invalid coverage)
	ViewsForgotten     uint64 // views of a peer's keys emptied to take them afresh, when a delta on top would exceed MaxKeysPerNode
	ForgedContent      uint64 // echoes of our own state at our max version with keys we never wrote (refuted)
	RepliesCapped      uint64 // plaintext Syns from unknown senders left unanswered: no answer fits 3 times their size
	// NodeDeltasUnknownRef counts node deltas naming by ref a node we do
	// not hold (a push about a node we have not met yet): skipped.
	NodeDeltasUnknownRef uint64
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
	fd, err := newSlotDetector(cfg.FailureDetector)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		rng:       rng,
		self:      cfg.ID,
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
	self.evidenced = true
	for _, kv := range initial {
		if err := e.Set(kv.Key, kv.Value); err != nil {
			return nil, fmt.Errorf("initial key %q: %w", kv.Key, err)
		}
	}
	static, _ := parseSeeds(cfg.Seeds)
	e.SetSeeds(static)
	e.push.announce = e.pushEnabled() // a joining node announces itself
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

func (e *Engine) selfState() *NodeState { return e.selfNS }

// node returns the state of id, or nil.
func (e *Engine) node(id NodeID) *NodeState {
	if i, ok := slices.BinarySearchFunc(e.states, id, compareState); ok {
		return e.states[i]
	}
	return nil
}

// lookup returns the state of id and whether we hold it.
func (e *Engine) lookup(id NodeID) (*NodeState, bool) {
	ns := e.node(id)
	return ns, ns != nil
}

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
	if self.kvs.find(key) < 0 && self.kvs.len() >= e.limits.MaxKeysPerNode {
		return fmt.Errorf("%w: the node holds %d keys (Limits.MaxKeysPerNode)", ErrTooManyKeys, self.kvs.len())
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
	e.selfWrite(func(ns *NodeState) {
		if ns.set(key, value) {
			e.listeners.fire(key, value, *ns.id)
		}
	})
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
	e.selfWrite(func(ns *NodeState) {
		if ns.setWithTTL(now, key, value) {
			e.listeners.fire(key, value, *ns.id)
		}
	})
	return nil
}

// Delete marks key of the self node as deleted. It reports whether the key
// existed (a missing key is logged and ignored, as upstream).
func (e *Engine) Delete(now time.Time, key string) bool {
	var ok bool
	e.selfWrite(func(ns *NodeState) { ok = ns.delete(now, key) })
	if !ok {
		e.log.Warn("key does not exist in the node's state and could not be deleted", "key", key)
	}
	return ok
}

// DeleteAfterTTL schedules key of the self node for deletion: it stays
// readable until collected MarkedForDeletionGracePeriod after now. It
// reports whether the key existed.
func (e *Engine) DeleteAfterTTL(now time.Time, key string) bool {
	var ok bool
	e.selfWrite(func(ns *NodeState) { ok = ns.deleteAfterTTL(now, key) })
	if !ok {
		e.log.Warn("key does not exist in the node's state and could not be deleted", "key", key)
	}
	return ok
}

// selfWrite runs a write on the self state and notes the change.
func (e *Engine) selfWrite(write func(*NodeState)) {
	self := e.selfState()
	old := self.maxVersion
	write(self)
	e.noteChange(self, old)
	if self.maxVersion != old {
		e.noteSelfNews(old)
	}
}

// freshRounds is how many rounds a node stays fresh after its state moved.
const freshRounds = 2

// noteChange records that ns's max version moved from old: the node is
// fresh for freshRounds rounds, and freshFrom remembers where this burst
// of changes started. Our Syns list fresh nodes explicitly, and a peer
// whose summary of a fresh node's bucket differs from ours gets the burst
// in our answer (docs/design/scale.md §3).
func (e *Engine) noteChange(ns *NodeState, old uint64) {
	if ns.maxVersion == old {
		return
	}
	if e.round > ns.freshUntil {
		ns.freshFrom = old
	}
	ns.freshUntil = e.round + freshRounds
}

// fresh reports whether ns's state moved in the last freshRounds rounds.
func (e *Engine) fresh(ns *NodeState) bool { return e.round <= ns.freshUntil && ns.freshUntil > 0 }

// Get returns the value of key on the self node.
func (e *Engine) Get(key string) (string, bool) { return e.selfState().Get(key) }

// NodeState returns a copy of the state of id.
func (e *Engine) NodeState(id NodeID) (*NodeState, bool) {
	ns, ok := e.lookup(id)
	if !ok {
		return nil, false
	}
	return ns.Clone(), true
}

// NodeIDs returns every node known, self included, in ID order.
func (e *Engine) NodeIDs() []NodeID {
	ids := make([]NodeID, len(e.states))
	for i, ns := range e.states {
		ids[i] = *ns.id
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
	e.setsChanged()
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
	ns := newNodeState(id)
	ns.slot = e.fd.alloc()
	if id == e.self {
		e.selfNS = ns
	}
	e.states = slices.Insert(e.states, i, ns)
	j, _ := slices.BinarySearchFunc(e.byRef, ns.ref, compareRef)
	e.byRef = slices.Insert(e.byRef, j, ns)
	e.setsChanged()
	e.gcHist.pop(id)
	e.noVictim = false // it may supersede an older generation
	if id != e.self {
		e.neverLive = append(e.neverLive, ns)
		e.numNeverLive++
		e.maybeCompactNeverLive()
		if len(e.unjudged) < 1024 {
			e.unjudged = append(e.unjudged, ns)
		}
	}
	return ns
}

// judgeNew judges the nodes created since the last call without evidence
// of life, so that a node heard of second-hand is dead (until it shows
// life) as soon as we hold it, not from our next round on: news travels
// faster than rounds now, and DeadNodes must not miss a node that
// LiveNodes already leaves out.
func (e *Engine) judgeNew(now time.Time) {
	for _, ns := range e.unjudged {
		if e.node(*ns.id) == ns && !ns.left && !ns.evidenced { // not removed since, heard of second-hand
			e.judge(ns, now)
		}
	}
	e.forgetUnjudged()
}

// forgetUnjudged empties the unjudged list, dropping a large backing
// array (a join holds hundreds of nodes once; a steady cluster, none).
func (e *Engine) forgetUnjudged() {
	if cap(e.unjudged) > 64 {
		e.unjudged = nil
		return
	}
	clear(e.unjudged)
	e.unjudged = e.unjudged[:0]
}

// maybeCompactNeverLive compacts the never-live queue once it holds more
// than twice as many entries as there are never-live nodes, and more than
// 64 (or Limits.MaxNodes if smaller): the queue stays within 2×MaxNodes,
// and each compaction, a pass over the states, follows as many creations,
// first verdicts of life or removals as it drops entries.
func (e *Engine) maybeCompactNeverLive() {
	if len(e.neverLive) > max(2*e.numNeverLive, min(64, e.limits.MaxNodes)) {
		e.compactNeverLive()
	}
}

// compactNeverLive drops the entries makeRoom would skip (nodes since seen
// live or removed): otherwise the queue grows by one entry for every node
// ever created, and holds one per live node for good. Slots grow with
// creation, so the queue is in slot order, and every node present and never
// live still has its entry.
func (e *Engine) compactNeverLive() {
	q := e.neverLive[:0]
	for _, ns := range e.states {
		if *ns.id != e.self && !ns.everLive {
			q = append(q, ns)
		}
	}
	if len(q) < len(e.neverLive) {
		clear(e.neverLive[len(q):]) // let the states dropped go
	}
	slices.SortFunc(q, func(a, b *NodeState) int { return cmp.Compare(a.slot, b.slot) })
	e.neverLive = slices.Clip(q)
}

// makeRoom frees a place for a new node when Limits.MaxNodes is reached.
// It reports whether there is room. The first to go:
//
//  1. the oldest node never seen live and without evidence of life
//     (invented ids never heartbeat convincingly; a node that did, but
//     was not judged live yet, is left to 3);
//  2. a node not live whose identity is superseded by a live later
//     generation of the same name and address (a restart, or a
//     reincarnation forced by a forger: each left an old identity behind
//     at every peer);
//  3. the node dead or left for the longest.
//
// Without 2 and 3, nodes seen live once (a forger's invented nodes kept
// heart-beating for a few rounds, old identities) filled the table until
// garbage collected, DeadNodeGracePeriod later (24 h by default), and every
// new node, honest ones included, was refused meanwhile. A node evicted
// under 2 or 3 is remembered in the GC history with its heartbeat, so that
// stale gossip does not bring it back; a live one comes back with its next
// heartbeat, which counts as a rise over the remembered one
// (observeEntries).
//
// For a node in direct contact (direct: a message from its own address
// carrying its own entry), a fourth choice comes before refusing: the
// oldest node we never had direct contact with. A forger that keeps
// invented ids heart-beating (rises are evidence, so they go live) would
// otherwise keep every new honest node out, even one talking to us.
func (e *Engine) makeRoom(direct bool) bool {
	if len(e.states) < e.limits.MaxNodes {
		return true
	}
	for len(e.neverLive) > 0 {
		ns := e.neverLive[0]
		e.neverLive[0] = nil
		e.neverLive = e.neverLive[1:]
		if e.node(*ns.id) == ns && !ns.everLive && !ns.evidenced { // not removed since
			e.stats.NodesEvicted++
			e.dropNode(ns)
			return true
		}
	}
	ns := e.victim()
	if ns == nil && direct {
		ns = e.unheardVictim()
	}
	if ns != nil {
		e.stats.NodesEvicted++
		e.log.Info("node evicted to make room", "node", *ns.id, "live", ns.live, "left", ns.left)
		e.gcHist.put(*ns.id, ns.heartbeat)
		e.dropNode(ns)
		return true
	}
	e.stats.NodesRefused++
	return false
}

// victim returns the node makeRoom evicts after the never-live ones, or
// nil: a superseded identity not live, else the node dead or left the
// longest.
func (e *Engine) victim() *NodeState {
	if e.noVictim {
		return nil
	}
	var oldest *NodeState
	var oldestAt time.Time
	for i, ns := range e.states {
		if *ns.id == e.self || ns.live {
			continue
		}
		// states is sorted by name, then generation, then address: a later
		// generation of the same node follows, within a few entries (the
		// look is bounded: a forger can invent many of one name).
		for _, next := range e.states[i+1 : min(i+9, len(e.states))] {
			if next.id.Name != ns.id.Name {
				break
			}
			if next.id.Addr == ns.id.Addr && next.id.Generation > ns.id.Generation && next.live {
				return ns
			}
		}
		if at, gone := e.goneAt(ns); gone && (oldest == nil || at.Before(oldestAt)) {
			oldest, oldestAt = ns, at
		}
	}
	if oldest == nil {
		e.noVictim = true
	}
	return oldest
}

// unheardVictim returns the node with the oldest slot among those we never
// had direct contact with, or nil.
func (e *Engine) unheardVictim() *NodeState {
	var v *NodeState
	for _, ns := range e.states {
		if *ns.id != e.self && !ns.heard && (v == nil || ns.slot < v.slot) {
			v = ns
		}
	}
	return v
}

func compareState(ns *NodeState, id NodeID) int { return ns.id.Compare(id) }

func compareRef(ns *NodeState, ref uint64) int { return cmp.Compare(ns.ref, ref) }

// removeNode drops the state of a garbage-collected node and remembers its
// heartbeat, so that stale gossip cannot resurrect it.
func (e *Engine) removeNode(id NodeID) {
	ns, ok := e.lookup(id)
	if !ok {
		return
	}
	e.dropNode(ns)
	e.gcHist.put(id, ns.heartbeat)
}

// forgotView marks the last time our view of a node was forgotten.
type forgotView struct {
	max uint64
	at  time.Time
}

// dropNode forgets ns entirely.
func (e *Engine) dropNode(ns *NodeState) {
	if *ns.id != e.self && !ns.everLive {
		e.numNeverLive--
	}
	if i, found := slices.BinarySearchFunc(e.states, *ns.id, compareState); found {
		e.states = slices.Delete(e.states, i, i+1)
	}
	for j, _ := slices.BinarySearchFunc(e.byRef, ns.ref, compareRef); j < len(e.byRef) && e.byRef[j].ref == ns.ref; j++ {
		if e.byRef[j] == ns {
			e.byRef = slices.Delete(e.byRef, j, j+1)
			break
		}
	}
	e.setsChanged()
	e.fd.release(ns.slot)
	delete(e.forgot, ns)
}

// scheduledForDeletion reports whether ns has been dead (or left) long
// enough to be left out of our digests and deltas: the detector's rule, on
// the mirrored time of death.
func (e *Engine) scheduledForDeletion(ns *NodeState, now time.Time) bool {
	at, gone := e.goneAt(ns)
	return gone && e.cfg.FailureDetector.ScheduledForDeletion(at, now)
}

// goneAt returns when ns left, or else when the detector found it dead in
// its current death; false if it is neither left nor dead.
func (e *Engine) goneAt(ns *NodeState) (time.Time, bool) {
	switch {
	case ns.left:
		return ns.leftTime(), true
	case ns.dead:
		return e.fd.TimeOfDeath(ns.slot)
	}
	return time.Time{}, false
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
	if err := e.checkReset(id, kvs, maxVersion, lastGCVersion); err != nil {
		return err
	}
	ns, ok := e.lookup(id)
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
		ns.setVersionedFiring(k, v, e.listeners)
	}
	ns.removeWhere(func(k string, _ VersionedValue) bool {
		_, keep := kvs[k]
		return !keep
	})
	ns.lastGCVersion = lastGCVersion
	e.evidence(ns) // a state fetched by the caller's own means
	e.checkLeft(now, ns)
	return nil
}

// checkReset enforces, on ResetNodeStateIfUpdate, the bounds every other
// path enforces: never the self node, versions at most 2^62, Limits.
func (e *Engine) checkReset(id NodeID, kvs map[string]VersionedValue, maxVersion, lastGCVersion uint64) error {
	switch {
	case id == e.self:
		return fmt.Errorf("%w: node %v is this node, whose state only it writes", ErrInconsistentReset, id)
	case len(id.Name) > e.limits.MaxNodeNameSize:
		return fmt.Errorf("%w: node name of %d bytes, Limits.MaxNodeNameSize is %d", ErrValueTooLarge, len(id.Name), e.limits.MaxNodeNameSize)
	case maxVersion > maxSafeVersion || lastGCVersion > maxSafeVersion:
		return fmt.Errorf("%w: versions above 2^62", ErrInconsistentReset)
	case len(kvs) > e.limits.MaxKeysPerNode:
		return fmt.Errorf("%w: %d keys, Limits.MaxKeysPerNode is %d", ErrTooManyKeys, len(kvs), e.limits.MaxKeysPerNode)
	}
	for k, v := range kvs {
		if v.Version == 0 || v.Version > maxSafeVersion || !v.Status.valid() {
			return fmt.Errorf("%w: key %q: version %d, status %d", ErrInconsistentReset, truncate(k, 64), v.Version, v.Status)
		}
		if len(k) > e.limits.MaxKeySize || len(v.Value) > e.limits.MaxValueSize {
			return fmt.Errorf("%w: key %q: %d-byte key, %d-byte value", ErrValueTooLarge, truncate(k, 64), len(k), len(v.Value))
		}
	}
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
