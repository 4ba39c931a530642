package chitchat

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"time"
)

// News in milliseconds: ring broadcast (docs/design/scale.md §7).
//
// When our own state changes, or a notice of life or death is due, we push
// it at once. The origin's duty is the whole ring but itself; a node with a
// duty splits the live nodes of its range, in ring order, into PushFanout
// contiguous chunks and sends the push to the first node of each, whose duty
// becomes the rest of its chunk. Every node receives each push once, within
// log_fanout(N) hops; a lost datagram loses a subtree, which anti-entropy
// completes. Pushes are rate limited by a token bucket that covers forwards
// too, so a write storm degrades to periodic gossip.

// Envelope is a message to send.
type Envelope struct {
	To  netip.AddrPort
	Msg Message
}

// pushState is the push side of an Engine.
type pushState struct {
	// newsFrom is our max version before the first change not pushed yet;
	// valid while news is set.
	newsFrom uint64
	news     bool
	// announce: an alive notice about ourselves is due (at start, and to
	// answer a death notice about us).
	announce bool
	notices  []Notice // originated here, not sent yet
	tokens   float64
	refilled time.Time
	// seen holds digests of recent pushes, so that a duplicated or
	// replayed push is not forwarded again.
	seen     [64]uint64
	seenNext int
	scratch  []byte
	stats    PushStats
}

// PushStats counts push traffic (Stats.Push).
type PushStats struct {
	Originated    uint64 // pushes of our own news or notices, per recipient
	Received      uint64 // pushes received
	Forwarded     uint64 // pushes forwarded, per recipient
	Duplicates    uint64 // pushes received again, not forwarded again
	RateLimited   uint64 // pushes not sent (news kept for later, forwards dropped) for lack of tokens
	NoticesAlive  uint64 // alive notices applied
	NoticesDead   uint64 // death notices that made a node dead here
	WrongCluster  uint64 // pushes of another cluster, ignored
	NewsToSeeds   uint64 // pushes sent to a seed because no node was live yet
	DeltasApplied uint64 // node deltas of pushes that brought news
	NotForwarded  uint64 // plaintext pushes from an address that is no member's: applied, not forwarded
	Misrouted     uint64 // pushes whose duty was meant for an earlier identity at our address: applied, not forwarded
}

func (e *Engine) pushEnabled() bool { return !e.cfg.DisablePush }

// memberAt reports whether addr is the advertised address of a peer we
// hold (recipient).
func (e *Engine) memberAt(addr netip.AddrPort) bool {
	return addr.IsValid() && e.recipient(normalizeAddr(addr)).IsValid()
}

// queueNotice schedules a notice for the next Flush.
func (e *Engine) queueNotice(n Notice) {
	if e.pushEnabled() {
		e.push.notices = append(e.push.notices, n)
	}
}

// noteSelfNews records that our own state moved from old.
func (e *Engine) noteSelfNews(old uint64) {
	if !e.pushEnabled() {
		return
	}
	if !e.push.news {
		e.push.newsFrom, e.push.news = old, true
	}
}

// refill adds the tokens earned since the last refill.
func (e *Engine) refill(now time.Time) {
	p := &e.push
	burst := e.cfg.PushRate / 10
	burst = max(burst, float64(e.cfg.PushFanout*e.cfg.PushRedundancy))
	if p.refilled.IsZero() {
		p.tokens = burst
	} else if d := now.Sub(p.refilled); d > 0 {
		p.tokens = min(burst, p.tokens+d.Seconds()*e.cfg.PushRate)
	}
	p.refilled = now
}

// Flush returns the pushes of our pending news and notices, if the rate
// limit allows (otherwise they stay pending for a later Flush or Tick).
func (e *Engine) Flush(now time.Time) []Envelope {
	p := &e.push
	if !e.pushEnabled() || (!p.news && !p.announce && len(p.notices) == 0) {
		return nil
	}
	e.refill(now)
	self := e.selfState()
	taken := e.noticesThatFit()
	m := &Push{ClusterID: e.cfg.ClusterID, Notices: slices.Clone(p.notices[:taken])}
	if p.announce {
		m.Notices = append(m.Notices, Notice{Kind: NoticeAlive, ID: *self.id, Heartbeat: self.heartbeat})
	}
	budget := e.cfg.MaxDatagramSize - EncodedSize(&Push{ClusterID: m.ClusterID, Notices: m.Notices, Range: &RingRange{After: ^uint64(0), Upto: ^uint64(0)}}) + 1
	if p.news && self.maxVersion > p.newsFrom {
		m.Delta = e.selfDelta0(p.newsFrom, budget)
	}
	whole := RingRange{After: ringBound(self.ref), Upto: ringBound(self.ref)}
	routes := e.route(now, whole, e.cfg.PushRedundancy)
	seed := false
	if len(routes) == 0 {
		// Nobody is live yet (we are joining): a seed forwards it all.
		to := e.pushSeed()
		if !to.IsValid() {
			return nil
		}
		routes, seed = []route{{to: to, duty: &whole}}, true
	}
	if p.tokens < float64(len(routes)) {
		p.stats.RateLimited += uint64(len(routes))
		return nil
	}
	p.tokens -= float64(len(routes))
	if seed {
		p.stats.NewsToSeeds++
	}
	p.stats.Originated += uint64(len(routes))
	// Whatever did not fit stays pending from where this push stopped.
	if n := len(m.Delta.Nodes); n > 0 {
		p.newsFrom = m.Delta.Nodes[n-1].MaxVersion
	}
	p.news = p.news && self.maxVersion > p.newsFrom
	p.announce = false
	p.notices = slices.Delete(p.notices, 0, taken) // the rest go with the next flush
	return e.envelopes(m, routes)
}

// noticesThatFit returns how many of the pending notices, in order, the
// next push carries: at most half the datagram (with our announcement),
// so that held notices (holdNotices, up to maxHeldNotices) never make a
// push larger than MaxDatagramSize, which would not be sent, and leave
// room for our news; at least one when it fits the datagram at all (one
// that cannot is dropped, or it would block every notice after it).
func (e *Engine) noticesThatFit() int {
	p := &e.push
	room := e.cfg.MaxDatagramSize / 2
	full := e.cfg.MaxDatagramSize - EncodedSize(&Push{ClusterID: e.cfg.ClusterID, Range: &RingRange{After: ^uint64(0), Upto: ^uint64(0)}}) - 8
	size := 0
	if p.announce {
		self := e.selfState()
		size = sizeNotice(&Notice{Kind: NoticeAlive, ID: *self.id, Heartbeat: self.heartbeat})
	}
	taken := 0
	for taken < len(p.notices) {
		n := sizeNotice(&p.notices[taken])
		if size+n > room {
			if taken == 0 && size+n > full {
				p.notices = slices.Delete(p.notices, 0, 1)
				continue
			}
			if taken > 0 {
				break
			}
		}
		size += n
		taken++
	}
	return taken
}

// selfDelta0 returns the delta of our own state after version from,
// within budget bytes.
func (e *Engine) selfDelta0(from uint64, budget int) Delta {
	self := e.selfState()
	w := &e.dw
	w.reset(budget)
	e.stale = self.appendStaleKeyValues(e.stale[:0], from)
	if len(e.stale) == 0 {
		if w.fits(sizeNodeRefOp(self.ref, self.lastGCVersion, from) + sizeMaxOp(self.maxVersion)) {
			w.addNodeRef(self.ref, self.lastGCVersion, from)
			w.addMax(self.maxVersion)
		}
		return w.finish()
	}
	// By ref: every receiver that can apply a push holds us.
	w.addNodeRef(self.ref, self.lastGCVersion, from)
	for _, kv := range e.stale {
		if !w.fits(sizeKVOp(kv.Key, kv.Value, kv.Version)) {
			break
		}
		w.addKV(kv)
	}
	clear(e.stale)
	return w.finish()
}

// pushSeed returns a seed to push to while no node is live, or the zero
// AddrPort.
func (e *Engine) pushSeed() netip.AddrPort {
	t := e.targetSets()
	if len(t.seeds) == 0 {
		return netip.AddrPort{}
	}
	return t.seeds[e.rng.IntN(len(t.seeds))]
}

// route is one recipient of a push and its forwarding duty (nil: none).
type route struct {
	to   netip.AddrPort
	duty *RingRange
}

// route splits the live nodes of range r, in ring order, into PushFanout
// contiguous chunks per tree (trees start at different rotations) and
// returns the first node of each chunk with the rest of the chunk as duty.
func (e *Engine) route(now time.Time, r RingRange, trees int) []route {
	nodes := e.ringNodes[:0]
	start, _ := slices.BinarySearchFunc(e.byRef, r.After+1, compareRef)
	if r.After == ^uint64(0) {
		start = 0
	}
	for k := range e.byRef {
		ns := e.byRef[(start+k)%len(e.byRef)]
		if !r.Contains(ns.ref) || *ns.id == e.self || !ns.live || ns.left {
			continue
		}
		nodes = append(nodes, ns)
	}
	e.ringNodes = nodes
	if len(nodes) == 0 {
		return nil
	}
	var out []route
	fanout := min(e.cfg.PushFanout, len(nodes))
	for tree := range min(trees, len(nodes)) {
		rot := tree * len(nodes) / trees
		for c := range fanout {
			lo, hi := c*len(nodes)/fanout, (c+1)*len(nodes)/fanout
			if hi-lo > 1 && nodes[(rot+lo)%len(nodes)].deathHeard {
				// A node named dead by a notice we keep (confirm.go) would
				// lose the chunk if it is dead: it gets the push without
				// the duty, and the next node heads the rest. (One such
				// node a chunk: forged notices cannot multiply pushes.)
				out = append(out, route{to: nodes[(rot+lo)%len(nodes)].id.Addr})
				lo++
			}
			head := nodes[(rot+lo)%len(nodes)]
			rt := route{to: head.id.Addr}
			last := nodes[(rot+hi-1)%len(nodes)]
			duty := RingRange{After: ringBound(head.ref), Upto: upToBound(last.ref)} // as the head resolves it
			if hi-lo > 1 && duty.After != duty.Upto && duty.Contains(last.ref) {
				// (Bounds that coincide would read as the whole ring: the
				// rare chunk whose head and last are that close is left to
				// anti-entropy.)
				rt.duty = &RingRange{Upto: duty.Upto, AfterRecipient: true, Tag: uint8(head.ref)}
			}
			out = append(out, rt)
		}
	}
	return out
}

// envelopes returns one push per route, each with its duty.
func (e *Engine) envelopes(m *Push, routes []route) []Envelope {
	out := make([]Envelope, len(routes))
	for i, rt := range routes {
		c := *m
		c.Range = rt.duty
		out[i] = Envelope{To: rt.to, Msg: &c}
	}
	return out
}

// onPush applies a push and returns its forwards.
func (e *Engine) onPush(now time.Time, in Inbound, m *Push) []Envelope {
	p := &e.push
	if m.ClusterID != e.cfg.ClusterID {
		p.stats.WrongCluster++
		return nil
	}
	p.stats.Received++
	key := e.pushKey(m)
	if slices.Contains(p.seen[:], key) {
		p.stats.Duplicates++
		return nil
	}
	p.seen[p.seenNext] = key
	p.seenNext = (p.seenNext + 1) % len(p.seen)

	// Whether the source is a member is decided before the push applies
	// (a leave takes its sender out of the members) and after (a joiner's
	// announcement makes it one).
	// A push read from a stream is a welcome from the node we dialled
	// (Output.Welcome): the connection is return-routable, so it is as
	// good as a member's.
	member := in.Authentic || in.Stream || e.memberAt(in.From)
	e.applyNotices(now, in, member, m.Notices)
	before := e.stats.NodeDeltasRejected + e.stats.NodeDeltasRefused + e.stats.NodeDeltasUnknownRef
	e.applyDelta(now, &m.Delta)
	p.stats.DeltasApplied += uint64(len(m.Delta.Nodes)) - (e.stats.NodeDeltasRejected + e.stats.NodeDeltasRefused + e.stats.NodeDeltasUnknownRef - before)
	if m.Range == nil || in.Stream || !e.pushEnabled() {
		return nil // a welcome has no duty (docs/PROTOCOL.md §11.16)
	}
	if !member && !e.memberAt(in.From) {
		// A plaintext push from an address that is no member's is applied
		// but not forwarded: otherwise one forged datagram would make the
		// whole ring send N copies. (A joiner's announcement then reaches
		// its seed only; gossip spreads it from there.)
		p.stats.NotForwarded++
		return nil
	}
	duty := *m.Range
	if duty.AfterRecipient {
		// The duty starts at us (RingRange), if it was meant for us: a
		// push routed to an earlier identity at our address (its sender
		// has not seen the restart yet) would start at our new position
		// and wrap around the ring, reaching that stale identity again
		// with another wrapped range (a cascade). The tag tells (1 in 256
		// is missed, and the next hop checks again); the chunk is left
		// to anti-entropy. A range that would read as the whole ring is
		// never meant (route gives no duty then): nothing is forwarded.
		self := e.selfState().ref
		if uint8(self) != duty.Tag {
			p.stats.Misrouted++
			return nil
		}
		duty.After = ringBound(self)
		if duty.After == duty.Upto {
			return nil
		}
	}
	routes := e.route(now, duty, 1)
	if len(routes) == 0 {
		return nil
	}
	e.refill(now)
	if p.tokens < float64(len(routes)) {
		p.stats.RateLimited += uint64(len(routes))
		e.holdNotices(m.Notices)
		return nil
	}
	p.tokens -= float64(len(routes))
	p.stats.Forwarded += uint64(len(routes))
	return e.envelopes(m, routes)
}

// pushKey digests what a push carries and its duty, for deduplication: the
// same news down another tree has another duty and is forwarded again.
//
// Its scratch buffer is kept for the next push only if a datagram's push
// could need it (twice the budget, for append's growth; at least
// maxKeptScratch): a welcome read from a stream (the whole cluster's
// state, megabytes at a join) would otherwise stay pinned for the
// engine's life (27 KB per engine after 2,000 rounds at N = 1,000 and a
// 1,400-byte budget in the simulator, 6 % of its heap).
func (e *Engine) pushKey(m *Push) uint64 {
	b := AppendMessage(e.push.scratch[:0], m)
	h := fnv.New64a()
	h.Write(b)
	if cap(b) <= max(maxKeptScratch, 2*e.cfg.MaxDatagramSize) {
		e.push.scratch = b
	} else {
		e.push.scratch = nil
	}
	return h.Sum64()
}

// maxHeldNotices bounds the notices held back by the rate limit.
const maxHeldNotices = 256

// holdNotices keeps the notices of a forward the rate limit dropped, to go
// out with our next push, many in one datagram: a seed that many nodes
// join at once forwards their announcements in a few pushes instead of
// losing most of them to the limit. The delta is not kept (anti-entropy
// carries it); notices about ourselves were answered already.
func (e *Engine) holdNotices(notices []Notice) {
	p := &e.push
	for _, n := range notices {
		if len(p.notices) >= maxHeldNotices {
			return
		}
		if n.ID != e.self && !slices.Contains(p.notices, n) {
			p.notices = append(p.notices, n)
		}
	}
}

// applyNotices applies notices of life and death.
func (e *Engine) applyNotices(now time.Time, in Inbound, fromMember bool, notices []Notice) {
	for _, n := range notices {
		if n.ID == e.self {
			switch n.Kind {
			case NoticeDead:
				// Refute a death notice about us with an alive notice.
				e.push.announce = e.pushEnabled()
			case NoticeAlive:
				e.checkSelfClaim(now, NodeDigest{Heartbeat: n.Heartbeat})
			}
			continue
		}
		if !e.acceptable(n.ID, NodeDigest{Heartbeat: n.Heartbeat}) {
			e.stats.ClaimsRefused++
			continue
		}
		ns := e.node(n.ID)
		switch n.Kind {
		case NoticeAlive:
			// An alive notice is evidence when it is authenticated, comes
			// from the node's own address (a joiner announcing itself) or
			// is relayed by a member (a push down the ring); from anyone
			// else it is hearsay, and only a rise counts, as for a digest
			// entry: otherwise any source could make invented nodes live.
			//
			// Only the node's own announcement is direct contact with it
			// (ns.heard, and room made for it by evicting nodes never
			// heard from): otherwise any member could fill the table with
			// invented nodes that nothing may evict while they look live.
			own := in.From.IsValid() && normalizeAddr(in.From) == n.ID.Addr
			direct := fromMember || own
			if ns == nil {
				if gcHeartbeat, collected := e.gcHist.peek(n.ID); (collected && gcHeartbeat >= n.Heartbeat) || !e.makeRoom(own) {
					continue
				}
				ns = e.createNode(n.ID)
			}
			if ns.left {
				continue
			}
			hb := ns.heartbeat
			e.observeHeartbeat(now, ns, n.Heartbeat, direct, own)
			if ns.heartbeat > hb || (hb == 0 && n.Heartbeat > 0) || (direct && ns.evidenced && !ns.live) {
				// (The last case: a joiner's Syn reached us just before its
				// announcement, with the same heartbeat; the Syn was the
				// evidence, the announcement is the news.)
				e.push.stats.NoticesAlive++
				e.judge(ns, now)
			}
		case NoticeDead:
			if ns == nil || ns.left || !ns.live {
				continue
			}
			if ns.heartbeat > n.Heartbeat {
				// We heard of the node after the notice's author last did.
				// Without monitors, that is life the notice did not see.
				// With them, the author found it silent since, asking it
				// (confirm.go), and the freshest heartbeats of a dead node
				// are the ones its monitors miss: its last Syns went to
				// random peers. Dropped, the notice left such observers to
				// their own threshold, twice the usual (at N = 2,000, the
				// last survivor to see a kill took 64 rounds, the median
				// 12). So it is kept at our heartbeat, and confirmed.
				if !e.monitoring() {
					continue
				}
				n.Heartbeat = ns.heartbeat
			}
			// The notice accelerates a suspicion we share; it does not
			// replace our own judgement. Before we share it, it is kept
			// until a heartbeat rises: judge applies it once our phi
			// passes half the threshold (an observer that hears from the
			// node less often than the first to find it dead would
			// otherwise wait for its own full threshold).
			ns.noteDeathHeartbeat(n.Heartbeat)
			if phi, ok := e.phi(ns, now); ok && phi <= e.cfg.FailureDetector.PhiThreshold/2 {
				ns.deathHeard = true
				if fromMember || ns.heard {
					// confirm.go: ask it. Not on a stranger's word about
					// a node that never spoke to us from its own address:
					// it may be one the stranger invented, at an address
					// of its choice (a reflector otherwise).
					e.confirm(ns, true)
				}
				continue
			}
			e.dieByNotice(ns, now)
			e.mirror(ns, now)
		}
	}
}

// dieByNotice makes ns dead in the failure detector on a death notice we
// share the suspicion of (at once, or later from judge when it was kept):
// the notice is counted, and no notice of our own follows (mirror).
func (e *Engine) dieByNotice(ns *NodeState, now time.Time) {
	e.push.stats.NoticesDead++
	ns.deadNoticed = true
	e.fd.MarkDead(ns.slot, now)
}
