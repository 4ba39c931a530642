package chitchat

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// CreateSyn returns the Syn of a gossip round: our own entry, the nodes we
// are asking (confirm.go, probeTarget), the nodes we want news of, the
// fresh ones, the suspects, and bucket summaries of as much of the ring
// as fits 70 % of the datagram budget (docs/design/scale.md §2). It moves
// the coverage cursor on, so that successive Syns cover the whole ring.
func (e *Engine) CreateSyn(now time.Time) *Syn {
	budget := e.cfg.MaxDatagramSize - envelopeSize - 1 - sizeStr(len(e.cfg.ClusterID)) - 1
	d, c := e.synDigest(now, budget*digestShareNum/digestShareDen)
	syn := &Syn{ClusterID: e.cfg.ClusterID, Digest: d, Sender: e.self, Cover: c}
	if e.padSyns && len(e.states) < padBelow {
		// First contact in plaintext: answers are limited to 3 times the
		// Syn's size, so a short Syn would get a useless answer.
		if n := min(padTo, e.cfg.MaxDatagramSize) - EncodedSize(syn) - 2; n > 0 {
			syn.Pad = n
		}
	}
	return syn
}

// CreateStreamSyn returns the Syn of a stream exchange: our whole view,
// explicitly (upstream's digest), for a bulk exchange
// (docs/design/scale.md §4).
func (e *Engine) CreateStreamSyn(now time.Time) *Syn {
	return &Syn{ClusterID: e.cfg.ClusterID, Digest: e.digest(now), Sender: e.self}
}

// digest returns our whole view, explicitly: every advertised node.
func (e *Engine) digest(now time.Time) Digest {
	d := make(Digest, 0, len(e.states))
	for _, ns := range e.states {
		if !e.advertised(ns, now) {
			continue
		}
		d = append(d, DigestEntry{ID: *ns.id, NodeDigest: ns.digest()})
	}
	return d
}

// advertised reports whether ns belongs in our digests and deltas: the self
// node, and every node not scheduled for deletion that showed evidence of
// life at least once. Nodes known only from hearsay that never heart-beat
// are held but not advertised, so that invented ids cannot fill our digests.
func (e *Engine) advertised(ns *NodeState, now time.Time) bool {
	return ns.evidenced && !e.scheduledForDeletion(ns, now)
}

// Output is what Step asks the caller to do.
type Output struct {
	// Reply, if not nil, goes to Inbound.From.
	Reply Message
	// SelfVersionSeen is the max version of our own state that the
	// message's digest showed the sender holds (0: not shown).
	SelfVersionSeen uint64
	// Pushes are forwards of a received push, and our own news or notices
	// when the message made some due.
	Pushes []Envelope
	// Welcome, set when a stream Syn or SynAck is answered, is the frame
	// that follows the reply on the stream: alive notices of ourselves and
	// the nodes we hold live. A stream is return-routable (TCP), so the
	// notices are evidence of life relayed by a member: a joiner sees the
	// cluster live at its first exchange instead of waiting for each
	// node's heartbeat to rise, and so does a node that a peer found
	// lagging (docs/PROTOCOL.md §11.16). Empty with push disabled.
	Welcome *Push
	// Streams are the peers to start a stream exchange with now: the
	// message showed that datagrams would bring them or us up to date
	// only slowly (a digest far from ours, news that did not fit).
	Streams []netip.AddrPort
}

// Process handles one message received from a peer and returns the reply to
// send back, or nil: Step with nothing known of how the message arrived.
func (e *Engine) Process(now time.Time, m Message) Message { return e.Step(now, Inbound{}, m).Reply }

// Step handles one message received from a peer.
//
// Every message, whatever it is, increments the self heartbeat. A Syn from
// our cluster is answered with our digest and what the peer lacks, within
// the reply budget; a SynAck is applied and answered with what the peer
// lacks; an Ack is applied.
func (e *Engine) Step(now time.Time, in Inbound, m Message) Output {
	e.selfState().incHeartbeat()
	var out Output
	// Whether the sender showed life at its address before this message:
	// only then may the message start a stream at once (below).
	var heardBefore bool
	switch m := m.(type) {
	case *Syn:
		heardBefore = e.knownAt(m.Sender, in.From)
	case *SynAck:
		heardBefore = e.knownAt(m.Sender, in.From)
	}
	e.streams.heard = heardBefore
	if heardBefore {
		e.streams.heardFrom(normalizeAddr(in.From))
	}
	defer func() { e.streams.heard = false }()
	switch m := m.(type) {
	case *Syn:
		if !m.Cover.valid() {
			e.stats.MessagesRefused++
			return out
		}
		if m.ClusterID != e.cfg.ClusterID {
			e.stats.BadClusterSent++
			e.log.Warn("received SYN message addressed to a different cluster", "cluster", m.ClusterID)
			out.Reply = &BadCluster{}
			return out
		}
		out.Reply = e.onSyn(now, in, m, &out)
		if in.Stream && out.Reply != nil {
			out.Welcome = e.welcome(m.Sender)
		}
	case *SynAck:
		if !m.Cover.valid() {
			e.stats.MessagesRefused++
			return out
		}
		out.Reply = e.onSynAck(now, in, m, &out)
		if in.Stream && out.Reply != nil {
			out.Welcome = e.welcome(m.Sender)
		}
	case *Ack:
		e.applyDelta(now, &m.Delta)
	case *BadCluster:
		e.stats.BadClusterReceived++
		e.log.Warn("message rejected by peer: wrong cluster")
	case *Push:
		out.Pushes = e.onPush(now, in, m)
	}
	e.settle(now)
	e.judgeNew(now)
	if !in.Stream && heardBefore && e.immediateStreamAllowed(now) {
		// Only a message from a sender we had heard from at its address
		// starts streams at once, and at most immediateStreams of them per
		// gossip interval: a spoofed plaintext Syn naming a victim's
		// address must not make us connect there per datagram (the rest
		// wait for the round, whose dials are bounded by maxStreamsOut).
		if out.Streams = e.wantedStreams(now, true); len(out.Streams) > 0 {
			e.streams.immediate = append(e.streams.immediate, now)
		}
	}
	if e.pushEnabled() {
		// News of life, death or leave changes the live set at once, not
		// at the end of the round.
		if e.liveDirty {
			e.publishLive()
		}
		out.Pushes = append(out.Pushes, e.Flush(now)...)
	}
	return out
}

// replyBudget returns the bytes a reply to a message from sender that
// arrived as in may take after its envelope and top-level array header.
//
// A plaintext source address can be spoofed, and answering a spoofed Syn
// with a full datagram would make us a traffic amplifier aimed at whoever
// owns that address. So a plaintext message is answered with at most 3
// times its size (QUIC's anti-amplification rule) unless it names as its
// sender a node we already hold, heard from, at that very address: then the
// worst a spoofer achieves is one datagram sent to a cluster member.
func (e *Engine) replyBudget(in Inbound, sender NodeID) int {
	budget := e.cfg.MaxDatagramSize
	if in.Stream {
		budget = e.cfg.MaxStreamMessageSize
	} else if !in.Authentic && in.Size > 0 && !e.knownAt(sender, in.From) {
		budget = min(budget, amplification*in.Size)
	}
	return budget - envelopeSize - 1
}

// knownAt reports whether id is a node we hold, that showed evidence of
// life, advertised at addr.
func (e *Engine) knownAt(id NodeID, addr netip.AddrPort) bool {
	if id == (NodeID{}) || id.Addr != normalizeAddr(addr) {
		return false
	}
	ns, ok := e.lookup(id)
	return ok && ns.evidenced
}

// onSyn answers a Syn of our cluster.
func (e *Engine) onSyn(now time.Time, in Inbound, m *Syn, out *Output) Message {
	v := &e.view
	*v = peerView{digest: m.Digest.normalize(), cover: m.Cover, summarized: v.summarized, mismatched: v.mismatched}
	budget := e.replyBudget(in, m.Sender) // before observe creates the sender
	e.observe(now, in, v, m.Sender, out)
	e.settle(now) // a reincarnation answers from the new identity
	var d Digest
	var c *Coverage
	if m.Cover == nil {
		d = e.digest(now)
		if !in.Stream && sizeDigest(d) > budget*digestShareNum/digestShareDen {
			// The peer sent its whole view but ours does not fit: answer
			// with a part of the ring, fully explicit.
			whole := &peerView{digest: v.digest, cover: &Coverage{Count: 1}}
			whole.summarized.reset(1)
			whole.mismatched.reset(1)
			d, c = e.replyDigest(now, whole, budget*digestShareNum/digestShareDen)
		}
	} else {
		d, c = e.replyDigest(now, v, budget*digestShareNum/digestShareDen)
	}
	echo := e.echoFor(in, m.Sender)
	used := sizeDigest(d) + sizeUint(senderIndex(d, e.self)) + sizeCoverage(c) + sizeEcho(echo)
	delta := e.computeDelta(now, v, budget-used)
	if e.streams.truncated || e.streamWorthy(now, v) {
		e.wantStream(now, in, m.Sender)
	}
	e.markWanted(v.digest)
	reply := &SynAck{Digest: d, Sender: e.self, Cover: c, Delta: delta, Echo: echo}
	if (c != nil && c.Count == 0) || encodedSizeHint(reply) > budget+envelopeSize+1 {
		// Even our smallest answer exceeds what this plaintext Syn may
		// get (an unpadded first contact, or a spoofed source).
		e.stats.RepliesCapped++
		return nil
	}
	return reply
}

// onSynAck applies a SynAck and answers with what its sender lacks.
func (e *Engine) onSynAck(now time.Time, in Inbound, m *SynAck, out *Output) Message {
	v := &e.view
	*v = peerView{digest: m.Digest.normalize(), cover: m.Cover, summarized: v.summarized, mismatched: v.mismatched}
	// The budget is set before observe: a spoofed SynAck naming a new
	// sender at the spoofed address would otherwise make that sender known
	// there and get a full answer (an amplifier).
	budget := e.replyBudget(in, m.Sender)
	e.answers.answered(normalizeAddr(in.From))
	e.observe(now, in, v, m.Sender, out)
	e.applyDelta(now, &m.Delta)
	if m.Echo != nil {
		e.checkEcho(now, *m.Echo)
	}
	e.settle(now)
	e.markWanted(v.digest)
	ack := &Ack{Delta: e.computeDelta(now, v, budget)}
	if e.streams.truncated || e.streamWorthy(now, v) {
		e.wantStream(now, in, m.Sender)
	}
	return ack
}

// observe records what a digest says: its explicit entries (heartbeats,
// nodes it is the first to mention, claims about us) and, with a coverage,
// the positional heartbeats of the summaries that match our view. The
// entry of the marked sender, when the message came from that sender's
// address, is direct evidence of life.
func (e *Engine) observe(now time.Time, in Inbound, v *peerView, sender NodeID, out *Output) {
	direct := sender != (NodeID{}) && in.From.IsValid() && normalizeAddr(in.From) == sender.Addr
	if !direct {
		sender = NodeID{}
	}
	e.observeEntries(now, v.digest, sender)
	if d, ok := v.digest.Get(e.self); ok {
		out.SelfVersionSeen = d.MaxVersion
	}
	if v.cover != nil {
		if e.readCover(now, v) {
			out.SelfVersionSeen = e.selfState().maxVersion
		}
	}
}

// observeEntries records the heartbeats of a digest's explicit entries,
// creating the nodes it is the first to mention, unless they were garbage
// collected with a heartbeat at least as large. Both the digest and states
// are sorted by ID: one merge pass, no hashing. direct is the entry whose
// node sent the digest itself (zero: none).
func (e *Engine) observeEntries(now time.Time, d Digest, direct NodeID) {
	i := 0
	for k := range d {
		id := d[k].ID
		var held bool // e.states[i] is id's
		i, held = e.seek(i, id)
		if id == e.self {
			e.checkSelfClaim(now, d[k].NodeDigest)
			continue
		}
		if !e.acceptable(id, d[k].NodeDigest) {
			// Every path that changes a state checks the bounds, not only
			// creation: a known node's heartbeat above them would make its
			// real heartbeats look old forever.
			e.stats.ClaimsRefused++
			continue
		}
		var ns *NodeState
		if held {
			ns = e.states[i]
		} else {
			gcHeartbeat, collected := e.gcHist.peek(id)
			if collected && gcHeartbeat >= d[k].Heartbeat {
				continue
			}
			if len(e.states) >= e.limits.MaxNodes {
				if !e.makeRoom(id == direct) {
					continue
				}
				i, _ = slices.BinarySearchFunc(e.states, id, compareState)
			}
			ns = e.createNodeAt(i, id)
			if collected {
				// Back after it was collected or evicted, with a larger
				// heartbeat than the one remembered: a rise, evidence of
				// life.
				ns.heartbeat = gcHeartbeat
			}
		}
		e.observeHeartbeat(now, ns, d[k].Heartbeat, id == direct, id == direct)
	}
}

// seek returns the first index j >= from at which e.states[j].id >= id
// (len(e.states) if none), and whether that state is id's.
// A digest is sorted and, once partial (issue 13), lists a few dozen of
// thousands of nodes: seek gallops from the previous entry's position,
// then searches the last stride, so a digest of k entries costs
// O(k log(N/k)) comparisons instead of a walk over every state (at
// N = 1,000 the walk's string comparisons were a tenth of a simulated
// round's CPU).
func (e *Engine) seek(from int, id NodeID) (int, bool) {
	states := e.states
	if from >= len(states) {
		return from, false
	}
	if *states[from].id == id { // the common case in a full digest
		return from, true
	}
	if states[from].id.Compare(id) > 0 {
		return from, false
	}
	// states[lo].id < id; find hi with states[hi].id >= id, or the end.
	lo, step := from, 1
	hi := lo + step
	for hi < len(states) && states[hi].id.Compare(id) < 0 {
		lo = hi
		step *= 2
		hi = lo + step
	}
	hi = min(hi, len(states)-1) + 1
	j, found := slices.BinarySearchFunc(states[lo+1:hi], id, compareState)
	return j + lo + 1, found
}

// observeHeartbeat records a heartbeat seen for ns. A rise is evidence of
// life and feeds the failure detector; so is the first heartbeat of a node
// that sent it itself (direct); the first heartbeat heard second-hand is
// only a baseline, since a dead node's last heartbeat keeps circulating.
// contact says the node itself sent it (ns.heard, which room-making
// counts); direct without contact is a member vouching for it (a relayed
// alive notice, a welcome).
func (e *Engine) observeHeartbeat(now time.Time, ns *NodeState, hb uint64, direct, contact bool) {
	if *ns.id == e.self {
		if hb > ns.heartbeat {
			e.refuteHeartbeat(now, hb)
		}
		return
	}
	if hb > maxSafeVersion {
		e.stats.ClaimsRefused++
		return
	}
	if direct && !ns.evidenced && hb > 0 && hb <= ns.heartbeat {
		// The node itself (or a member vouching for it: a relayed alive
		// notice, a stream welcome naming the heartbeat its SynAck just
		// gave us) says its heartbeat is at most the baseline we hold of
		// it: the baseline came from hearsay, never showed life, and was
		// never advertised, so it is no evidence, and a forged first
		// mention may have set it too high. Without this, the owner would never
		// see the claim to refute it, and its real heartbeats would never
		// rise above it here: dead for good.
		ns.heartbeat = 0
	}
	if contact {
		ns.heard = true
	}
	first := ns.heartbeat == 0
	if contact && !first && hb > 0 && hb <= ns.heartbeat && ns.evidenced && !ns.left {
		// The node itself, from its own address, with a heartbeat no
		// higher than the one we hold: ours came by hearsay, above its
		// real one (a forged digest entry: anyone's to make; the node
		// refutes it once it sees it). Not a rise, so not life for the
		// detector, but it is word from the node: it answers a
		// confirmation and restarts a monitor's silence clock
		// (confirm.go). Without it, a stranger's digest entry naming
		// the heartbeat we hold plus 1,000, sent each round to a node's
		// monitors, made its every word silence: the monitors found it
		// dead and kept it dead for as long as the entries came
		// (TestHostile11InflatedHeartbeatAtMonitors: 83 observer-rounds
		// dead in 40 rounds of 20 nodes); with a death notice naming it,
		// to one observer, dead there for 33 of 40 rounds
		// (TestHostile11InflatedHeartbeatDefeatsConfirmation).
		e.contacted(ns, now, true)
	}
	if ns.trySetHeartbeat(hb) || (direct && first && hb > 0) {
		e.evidence(ns)
		if ns.left {
			// Left, not judged, but its window kept current (checkLeft
			// judges it at once if the leave is undone): a window frozen
			// at the leave judged a node whose forged leave a forger
			// renewed for 12 rounds on a heartbeat 12 s old once the
			// refutation came: dead, or live past half the threshold and
			// dead a round later with a death notice, then held back by
			// settling (26 observer-rounds not live and 3 false deaths
			// after the forger stopped, at 20 nodes; none now:
			// TestHostile12LongForgedLeaveFrozenWindow). Only a window
			// that can judge (the node was not dead at the leave: a
			// death resets it): a dead node's last heartbeats, still
			// spreading, must not revive it here if its leave is undone.
			if _, judgeable := e.fd.Mean(ns.slot); judgeable {
				e.fd.ReportHeartbeat(ns.slot, now)
			}
		} else {
			if !direct && ns.dead && ns.everLive && e.settling(ns, now) {
				// Found dead here not long ago: its last heartbeats are
				// still spreading (monitor.go, settle). Or it is live,
				// found dead on a forged notice it never saw: our next
				// round asks it (probeTarget).
				e.holdBack(ns)
				return
			}
			if !direct && hb <= ns.deathHeartbeat() && int(ns.pastRises) < e.pastRisesAllowed() {
				// A death notice named this heartbeat or a higher one:
				// the node had it before it was found dead, and it is
				// still spreading. It is its past, not life: reported,
				// it would revive a dead node here (and keep a kept
				// notice from applying) until the notice's own
				// heartbeat came, then see it die again. The state
				// keeps it, so anti-entropy is unchanged. The node
				// itself, or a member vouching for it, is not hearsay.
				//
				// Only a few such rises: a dead node's past reaches us
				// as a few rises (each a view fresher than ours), a live
				// node's rises never stop. The notice's heartbeat is
				// unchecked (anyone can name 2^62), so without a bound
				// one forged notice muted a live node's rises here until
				// its next direct contact (every N/4 rounds or so).
				ns.pastRises++
				return
			}
			// Life: it voids a kept notice too, whatever heartbeat the
			// notice named (trySetHeartbeat voids it on a rise past it).
			ns.clearDeathHeartbeat()
			ns.deathHeard = false
			e.fd.ReportHeartbeat(ns.slot, now)
			if direct {
				e.contacted(ns, now, contact) // confirm.go
			}
			if !ns.everLive {
				// A node never seen live is judged at its first evidence,
				// not at our next round: a joiner, news of which travels
				// faster than rounds. (A node seen live before waits for
				// the round, as upstream: its death was judged on rounds.)
				e.judge(ns, now)
			}
		}
	}
}

// pastRisesAllowed returns how many hearsay rises up to a death notice's
// heartbeat observeHeartbeat takes as the node's past: the most that,
// arriving one per mean interval, leave the next (reported) rise short of
// half the threshold, where a kept notice applies. So notices, however
// high the heartbeat they name and however often they come, cannot kill a
// node whose rises keep coming at their usual pace (2 at the default
// threshold of 8).
func (e *Engine) pastRisesAllowed() int {
	return min(max(int(math.Ceil(e.cfg.FailureDetector.PhiThreshold/2))-2, 0), math.MaxUint8)
}

// applyDelta applies every node delta, creating the nodes a delta from
// version 0 brings (partial digests do not list every node, so a delta can
// be the first we hear of one), and calls the catch-up callback once if any
// node was reset.
func (e *Engine) applyDelta(now time.Time, d *Delta) {
	reset := false
	for i := range d.Nodes {
		nd := &d.Nodes[i]
		if nd.ID == (NodeID{}) {
			// Named by ref: a node we hold, or nothing to apply it to (a
			// delta from version 0 about a node we do not hold creates it
			// only with its NodeID; anti-entropy brings it).
			j, found := slices.BinarySearchFunc(e.byRef, nd.Ref, compareRef)
			if !found {
				e.stats.NodeDeltasUnknownRef++
				continue
			}
			named := *nd // the message stays as it came (a push is forwarded)
			named.ID = *e.byRef[j].id
			nd = &named
		}
		if nd.ID == e.self {
			e.selfDelta(now, nd)
			continue
		}
		ns, ok := e.lookup(nd.ID)
		if !ok {
			if ns = e.createFromDelta(nd); ns == nil {
				continue
			}
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
		if ok, overCount := e.withinLimits(ns, nd, status); !ok {
			e.stats.NodeDeltasRefused++
			e.log.Warn("node delta refused: exceeds limits", "node", nd.ID)
			if overCount && status != deltaApplyAfterReset && ns.maxVersion > 0 {
				e.forgetView(now, ns, nd.MaxVersion)
			}
			continue
		}
		before := ns.monotonic()
		oldMax := ns.maxVersion
		ns.applyDelta(now, nd, status, e.listeners)
		e.noteChange(ns, oldMax)
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

// withinLimits reports whether applying nd to ns with the given verdict
// keeps ns within Limits, and, when it does not, whether the key count is
// what it exceeds. The key count follows the verdict: a reset starts from
// nothing, anything else adds to the keys ns holds. (Deciding "reset" apart
// from classify let ten compatible deltas of 4 keys each add up to 40 keys
// under a limit of 4.) Keys repeated within the delta are counted each
// time: conservative, and free of allocation.
func (e *Engine) withinLimits(ns *NodeState, nd *NodeDelta, status deltaStatus) (ok, overCount bool) {
	added := 0
	for _, kv := range nd.KeyValues {
		if len(kv.Key) > e.limits.MaxKeySize || len(kv.Value) > e.limits.MaxValueSize {
			return false, false
		}
		if status == deltaApplyAfterReset || ns.kvs.find(kv.Key) < 0 {
			added++
		}
	}
	if status == deltaApplyAfterReset {
		ok = added <= e.limits.MaxKeysPerNode
	} else {
		ok = ns.kvs.len()+added <= e.limits.MaxKeysPerNode
	}
	if ok {
		return true, false
	}
	// Refused. Whether the key count is really what the delta exceeds
	// decides whether the view is forgotten: count each new key once (a
	// delta repeating one key must not pass for many).
	if status != deltaApplyAfterReset {
		fresh := make(map[string]struct{}, len(nd.KeyValues))
		for _, kv := range nd.KeyValues {
			if ns.kvs.find(kv.Key) < 0 {
				fresh[kv.Key] = struct{}{}
			}
		}
		return false, ns.kvs.len()+len(fresh) > e.limits.MaxKeysPerNode
	}
	return false, true
}

// forgetView empties our view of a peer's keys (versions back to 0, the
// heartbeat and the verdict kept), when a delta on top of it would exceed
// Limits.MaxKeysPerNode. Keys forged under the peer's id, at versions it
// had used that we had not received, cannot be told from real ones; once
// they fill the limit, every later delta of the peer is refused and our
// view is frozen for good. Taking the state afresh from version 0 (peers
// see our max version 0 and send it whole) drops whatever was forged; a
// state that really exceeds our limits is refused again, as before. This
// is the one place where a state's (last GC version, max version) goes
// back.
//
// A view is forgotten at most once per max version of the peer's (claimed
// by the refused delta: a forger cannot claim more than the owner wrote
// without being refuted) and once per StreamSyncInterval: an honest state
// larger than our limit, taken a prefix at a time, must not churn, and
// forged deltas must not wipe a view again and again.
func (e *Engine) forgetView(now time.Time, ns *NodeState, claimed uint64) {
	// The marks of the last forgetting live in Engine.forgot, not in
	// nodeLocal: they are set for a handful of nodes at most, and 16
	// bytes there are paid once per node per observer.
	f := e.forgot[ns]
	if claimed <= f.max || (!f.at.IsZero() && now.Sub(f.at) < e.cfg.StreamSyncInterval) {
		return
	}
	e.stats.ViewsForgotten++
	e.log.Warn("forgetting our view of a node's keys: a delta on top of it exceeds MaxKeysPerNode; taking its state afresh",
		"node", *ns.id, "keys", ns.kvs.len(), "max_version", ns.maxVersion)
	if e.forgot == nil {
		e.forgot = map[*NodeState]forgotView{}
	}
	e.forgot[ns] = forgotView{max: claimed, at: now}
	ns.clearKVs()
	ns.maxVersion, ns.lastGCVersion = 0, 0
	ns.forgotten++
	ns.wanted = true
}

// checkLeft notices that a peer has set LeftKey, or that the key is gone
// again: a node marked left whose state no longer holds the key had its
// leave forged (anyone could write the key under its id at a version it
// had not used yet); its refutation reset our view to its real state. It
// goes back to the failure detector, judged at once on the window kept
// while it was left (current with its rises, unless it was dead at the
// leave: observeHeartbeat).
func (e *Engine) checkLeft(now time.Time, ns *NodeState) {
	if *ns.id == e.self {
		return
	}
	// Only a leave key of status Set is a leave: one with a TTL would be
	// collected on each node's clock, and one a forger wrote with a TTL
	// at a version whose real entry was collected cannot be told apart.
	lk, has := ns.kvs.get(LeftKey)
	has = has && lk.Status == StatusSet
	switch {
	case has && !ns.left:
		ns.setLeft(true, now)
		ns.live = false
		ns.dead = false
		e.setsChanged()
		e.liveDirty = true
		// Out of the detector's hands, with its window kept: a leave may
		// be forged (anyone who can write a delta can write the key), and
		// a node whose forged leave is refuted is judged again on the
		// heartbeats it had. Forgotten, its window was empty, and it was
		// dead until new ones came: one stranger's datagram, once
		// refuted, still cost a live node 48 observer-rounds of 20 nodes
		// (hostile review 11, TestHostile11ForgedLeaveUndone).
		e.fd.Suspend(ns.slot)
		e.log.Info("node left", "node", *ns.id)
	case !has && ns.left:
		ns.setLeft(false, now)
		e.setsChanged()
		e.liveDirty = true
		e.judge(ns, now) // live again at once if it was before the forgery
		e.log.Warn("node left, then its state lost the leave (a refuted forgery): back under the failure detector", "node", *ns.id)
	}
}

// createFromDelta creates the state of a node first heard of in a delta,
// if the delta can apply to nothing (from version 0) and the node may be
// held: not recently collected (a delta carries no heartbeat to compare
// with the GC history), within Limits. It returns nil otherwise.
func (e *Engine) createFromDelta(nd *NodeDelta) *NodeState {
	if nd.FromVersionExcluded != 0 || len(nd.ID.Name) > e.limits.MaxNodeNameSize || !nd.ID.Addr.IsValid() {
		return nil
	}
	if _, collected := e.gcHist.peek(nd.ID); collected {
		return nil
	}
	if !e.makeRoom(false) {
		return nil
	}
	return e.createNode(nd.ID)
}
