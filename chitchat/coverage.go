package chitchat

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"
)

// Partial digests (docs/design/scale.md §2). A digest lists some nodes
// explicitly and summarizes, bucket by bucket, a run of the ring: a bucket
// summary is the count, the XOR of state hashes and the low 16 bits of the
// heartbeats of the sender's advertised nodes of that bucket that are not
// listed explicitly. A receiver whose own view of those nodes hashes the same
// takes the heartbeats positionally and has nothing to exchange for them;
// otherwise it answers with the bucket fully explicit.

// Budget shares of a digest.
const (
	// digestShare of a Syn or SynAck budget may go to the digest: the
	// SynAck answering a Syn carries a digest of about the same size and
	// still needs room for a delta.
	digestShareNum, digestShareDen = 7, 10
	// spotShare of a digest budget may go to spot entries (wanted nodes
	// and suspects), the rest to coverage.
	spotShareNum, spotShareDen = 2, 5
	// bucketTarget is the number of nodes a bucket holds on average.
	bucketTarget = 16
	// padTo is the size of the Syns of a node that knows fewer than
	// padBelow nodes, when it gossips in plaintext: answers to plaintext
	// Syns are limited to 3 times their size.
	padTo, padBelow = 1200, 8
	// amplification bounds a plaintext reply relative to its request.
	amplification = 3
)

// bitsFor returns the bucket bits for n advertised nodes: about
// bucketTarget nodes per bucket.
func (e *Engine) bitsFor(n int) uint8 {
	target := bucketTarget
	if e.tune.bucketTarget > 0 {
		target = e.tune.bucketTarget
	}
	if n < 2*target {
		return 0
	}
	return uint8(min(bits.Len(uint(n/target))-1, maxBits))
}

// tuning holds knobs that only tests set, to exercise partial coverage
// with a handful of nodes. Zero values keep the defaults.
type tuning struct {
	bucketTarget int    // nodes per bucket
	maxBuckets   uint32 // buckets a Syn covers at most
}

// bucketNodes returns the states of bucket k at bits, in ref order.
func (e *Engine) bucketNodes(k uint32, b uint8) []*NodeState {
	lo, _ := slices.BinarySearchFunc(e.byRef, bucketStart(k, b), compareRef)
	hi := len(e.byRef)
	if b > 0 && uint64(k)+1 < 1<<b {
		hi, _ = slices.BinarySearchFunc(e.byRef, bucketStart(k+1, b), compareRef)
	}
	return e.byRef[lo:hi]
}

// emptyRun returns the number of buckets at bits b, from k on around the
// ring, that hold no state: 0 when bucket k holds one. The cost is one
// binary search, whatever the run's length.
func (e *Engine) emptyRun(k uint32, b uint8) uint32 {
	if len(e.byRef) == 0 {
		return 1 << b
	}
	i, _ := slices.BinarySearchFunc(e.byRef, bucketStart(k, b), compareRef)
	if i == len(e.byRef) {
		i = 0 // wrap around the ring
	}
	return (bucketOf(e.byRef[i].ref, b) - k) & (1<<b - 1)
}

// nextMark starts a new set of explicitly listed nodes.
func (e *Engine) nextMark() uint32 {
	e.markGen++
	if e.markGen == 0 { // wrapped: clear every stale mark
		for _, ns := range e.states {
			ns.mark = 0
		}
		e.markGen = 1
	}
	return e.markGen
}

// markDigest marks the nodes of d that we hold, and returns the mark.
func (e *Engine) markDigest(d Digest) uint32 {
	m := e.nextMark()
	for i := range d {
		if ns, ok := e.lookup(d[i].ID); ok {
			ns.mark = m
		}
	}
	return m
}

// summarize returns the summary of bucket k at bits b over our advertised
// nodes not marked with mark, with their heartbeats.
//
// The heartbeats are appended to *slab, shared by the summaries of one
// message (one allocation per message, not one per bucket).
func (e *Engine) summarize(now time.Time, k uint32, b uint8, mark uint32, slab *[]uint16) BucketSummary {
	s := BucketSummary{Bucket: k}
	start := len(*slab)
	for _, ns := range e.bucketNodes(k, b) {
		if ns.mark == mark || !e.advertised(ns, now) {
			continue
		}
		s.Hash ^= ns.stateHash()
		*slab = append(*slab, uint16(ns.heartbeat))
	}
	if end := len(*slab); end > start {
		s.Heartbeats = (*slab)[start:end:end]
	}
	return s
}

// newSlab returns the heartbeat slab of a message of budget bytes: each
// heartbeat takes 2 of them.
func (e *Engine) newSlab(budget int) []uint16 {
	return make([]uint16, 0, max(0, min(len(e.states), budget/2)))
}

func summarySize(offset uint32, n int) int {
	return uvarintSize(uint64(offset)) + uvarintSize(uint64(n)) + 8 + 2*n
}

// bitset is a set of small integers.
type bitset []uint64

func (s *bitset) reset(n int) {
	words := (n + 63) / 64
	if cap(*s) < words {
		*s = make(bitset, words)
		return
	}
	*s = (*s)[:words]
	clear(*s)
}

func (s bitset) set(i uint32)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) has(i uint32) bool { return s[i/64]&(1<<(i%64)) != 0 }

// peerView is what a peer's digest says it holds, for computeDelta.
type peerView struct {
	digest Digest // explicit entries, sorted by ID
	cover  *Coverage
	// summarized marks the offsets of covered buckets that carry a
	// summary: the nodes of those buckets that are not listed explicitly
	// are not absent, only not discussed.
	summarized bitset
	// mismatched marks the summarized offsets whose summary differs from
	// our view.
	mismatched bitset
	// diverged counts the mismatched summaries, and differ the nodes by
	// which the counts of those summaries differ from ours.
	diverged, differ int
}

// randomMismatch returns a random offset among the mismatched ones.
func (v *peerView) randomMismatch(rng *rand.Rand) (uint32, bool) {
	if v.diverged == 0 {
		return 0, false
	}
	k := rng.IntN(v.diverged)
	for w, word := range v.mismatched {
		if n := bits.OnesCount64(word); k >= n {
			k -= n
			continue
		}
		for ; ; k-- {
			b := bits.TrailingZeros64(word)
			if k == 0 {
				return uint32(w*64 + b), true
			}
			word &^= 1 << b
		}
	}
	return 0, false
}

// unknown reports whether the peer's digest, not listing ns, says the peer
// does not hold ns: always for a whole view, and for a node of a covered
// bucket without a summary.
func (v *peerView) unknown(ns *NodeState) bool {
	if v.cover == nil {
		return true
	}
	o := v.cover.offset(bucketOf(ns.ref, v.cover.Bits))
	return o < v.cover.Count && !v.summarized.has(o)
}

// mismatch reports whether ns is in a summarized bucket of the peer's
// coverage whose summary differs from our view.
func (v *peerView) mismatch(ns *NodeState) bool {
	if v.cover == nil {
		return false
	}
	o := v.cover.offset(bucketOf(ns.ref, v.cover.Bits))
	return o < v.cover.Count && v.mismatched.has(o)
}

// readCover checks a peer's coverage against our view: for every summary
// that matches, it records the positional heartbeats; it fills v's sets.
// The peer's explicit entries (v.digest) are excluded from our side of
// each summary, as they were from the peer's. It reports whether a
// matching summary included the self node (the peer holds our state as we
// do).
func (e *Engine) readCover(now time.Time, v *peerView) (selfSeen bool) {
	c := v.cover
	v.summarized.reset(int(c.Count))
	v.mismatched.reset(int(c.Count))
	if len(c.Summaries) == 0 {
		return false
	}
	mark := e.markDigest(v.digest)
	for i := range c.Summaries {
		s := &c.Summaries[i]
		o := c.offset(s.Bucket)
		v.summarized.set(o)
		nodes := e.bucketNodes(s.Bucket, c.Bits)
		n := 0
		var h uint64
		for _, ns := range nodes {
			if ns.mark != mark && e.advertised(ns, now) {
				n++
				h ^= ns.stateHash()
			}
		}
		if n != len(s.Heartbeats) || h != s.Hash {
			v.mismatched.set(o)
			v.diverged++
			v.differ += max(n-len(s.Heartbeats), len(s.Heartbeats)-n)
			continue
		}
		j := 0
		for _, ns := range nodes {
			if ns.mark == mark || !e.advertised(ns, now) {
				continue
			}
			// The hashes agree on heartbeat>>16: the value is exact.
			e.observeHeartbeat(now, ns, ns.heartbeat&^0xffff|uint64(s.Heartbeats[j]), false, false)
			selfSeen = selfSeen || *ns.id == e.self
			j++
		}
	}
	return selfSeen
}

// advCount caches advertisedCount, which every Syn built and every
// coverage read needs: counting walks every state, and at N = 1,000 the
// walks were 8 % of a simulated round's CPU. The count changes when a state
// is created or dropped, becomes evidenced, leaves or changes verdict
// (setsChanged, and observeHeartbeat for evidence), and when time passes
// the moment a gone node is scheduled for deletion: the cache holds the
// earliest such moment ahead.
type advCount struct {
	valid   bool
	n       int
	from    time.Time // when n was counted
	until   time.Time // n holds while now <= until, if bounded
	bounded bool
}

// setsChanged drops what is derived from the set of states and their
// verdicts: the target address sets and the advertised count.
func (e *Engine) setsChanged() {
	e.targets.valid = false
	e.adv.valid = false
}

// evidence marks ns evidenced (advertised).
func (e *Engine) evidence(ns *NodeState) {
	if !ns.evidenced {
		ns.evidenced = true
		e.adv.valid = false
	}
}

// advertisedCount returns the number of nodes our digests advertise at now
// (advertised).
func (e *Engine) advertisedCount(now time.Time) int {
	c := &e.adv
	if !c.valid || now.Before(c.from) || (c.bounded && now.After(c.until)) {
		*c = e.countAdvertised(now)
	}
	return c.n
}

// countAdvertised counts the nodes advertised at now, and until when the
// count holds.
func (e *Engine) countAdvertised(now time.Time) advCount {
	c := advCount{valid: true, from: now}
	for _, ns := range e.states {
		if !e.advertised(ns, now) {
			continue
		}
		c.n++
		if at, gone := e.goneAt(ns); gone {
			// Scheduled for deletion once now is past this moment
			// (failuredetector.Config.ScheduledForDeletion).
			d := at.Add(e.cfg.FailureDetector.DeadNodeGracePeriod / 2)
			if !c.bounded || d.Before(c.until) {
				c.until, c.bounded = d, true
			}
		}
	}
	return c
}

// synDigest builds the digest of a Syn within budget bytes (explicit
// entries, coverage and sender index): our own entry, then the nodes we
// are confirming and the one probeTarget asks, the nodes we want news of,
// the fresh ones and the suspects (at most spotShare of the budget), then
// bucket summaries of the ring from the cursor, as many as fit. The whole
// ring fits in small clusters; otherwise the cursor moves on, so that
// successive Syns cover every bucket.
func (e *Engine) synDigest(now time.Time, budget int) (Digest, *Coverage) {
	self := e.selfState()
	d := Digest{{ID: *self.id, NodeDigest: self.digest()}}
	used := sizeArrayHeader(16) + sizeDigestEntry(&d[0]) + 2 // + sender index
	spots := budget * spotShareNum / spotShareDen
	mark := e.nextMark()
	self.mark = mark
	// list adds ns as a spot entry if it is advertised, not listed yet,
	// and fits within limit bytes, and reports whether it did.
	list := func(ns *NodeState, limit int) bool {
		if ns == nil || ns.mark == mark || !e.advertised(ns, now) {
			return false
		}
		entry := DigestEntry{ID: *ns.id, NodeDigest: ns.digest()}
		if used+sizeDigestEntry(&entry) > limit {
			return false
		}
		used += sizeDigestEntry(&entry)
		d = append(d, entry)
		ns.mark = mark
		return true
	}
	// The nodes we are asking (confirm.go) first: the Syn we send them
	// shows each the heartbeat we hold of it, and one above its own (a
	// hearsay claim, anyone's to make) is refuted at once: its answer
	// rises past the claim, is life, and voids the kept notice. Without
	// it, the node saw a stranger's forged digest entry (the heartbeat we
	// hold plus 2^40) only once it had spread from us through others: its
	// phi here, frozen at the claim, passed half the threshold first, and
	// the stranger's death notice, kept, applied: dead here for 8 of 40
	// rounds after two datagrams at 30 nodes
	// (TestHostile11AskingSynShowsTheClaim).
	if e.probed != (NodeID{}) {
		// The node probeTarget asks, dead here: its answer revives it if
		// it is a rise. Without this, one stranger's entry kept a node
		// found dead for a moment dead here for 9 of 40 rounds, not 1
		// (TestHostile11InflatedHeartbeatKeepsDead).
		list(e.node(e.probed), spots)
	}
	// The probed node and our own suspicions before kept notices, and
	// kept notices within half the room left: anyone can have us keep
	// up to confirmMax notices about live nodes, every round. Listed
	// first, and with no bound of their own, four such notices (four
	// datagrams a round) filled the spots at a 1,400-byte datagram with
	// 63-byte names: neither the probed node nor any wanted, fresh or
	// suspect node was listed (TestHostile12NoticesCrowdTheSyn).
	for _, c := range e.confirming {
		if !c.notice {
			list(e.node(c.id), spots)
		}
	}
	half := used + (spots-used)/2
	for _, c := range e.confirming {
		if c.notice {
			list(e.node(c.id), half)
		}
	}
	for _, pass := range [3]func(*NodeState) bool{
		func(ns *NodeState) bool { return ns.wanted },
		e.fresh,
		func(ns *NodeState) bool { return ns.suspect },
	} {
		for _, ns := range e.states {
			if pass(ns) && list(ns, spots) {
				ns.wanted = false // asked once; a later mismatch asks again
			}
		}
	}
	slices.SortFunc(d, compareEntries)

	b := e.bitsFor(e.advertisedCount(now))
	total := uint32(1) << b
	first := bucketOf(e.cursor, b)
	c := &Coverage{Bits: b, First: first}
	used += 1 + 3*5 + 3 // coverage header, bin header
	limit := total
	if e.tune.maxBuckets > 0 {
		limit = min(limit, e.tune.maxBuckets)
	}
	slab := e.newSlab(budget - used)
	for c.Count < limit {
		k := (first + c.Count) & (total - 1)
		s := e.summarize(now, k, b, mark, &slab)
		size := 0
		if len(s.Heartbeats) > 0 {
			size = summarySize(c.Count, len(s.Heartbeats))
		}
		if used+size > budget && c.Count > 0 {
			break
		}
		used += size
		if len(s.Heartbeats) > 0 {
			c.Summaries = append(c.Summaries, s)
		}
		c.Count++
	}
	if c.Count == total {
		c.First = 0
		c.Summaries = rotateSummaries(c.Summaries, c)
	}
	e.cursor = bucketStart((first+c.Count)&(total-1), b)
	e.partialCover = c.Count < total
	return d, c
}

// rotateSummaries puts the summaries of a whole-ring coverage that started
// at another bucket back in bucket order, now that it starts at 0.
func rotateSummaries(s []BucketSummary, c *Coverage) []BucketSummary {
	slices.SortFunc(s, func(a, b BucketSummary) int { return int(a.Bucket) - int(b.Bucket) })
	return s
}

// replyDigest builds the digest of a SynAck answering a digest that came
// with coverage pc (read into v), within budget bytes: our own entry, our
// entries for the peer's explicit entries, then the peer's covered buckets
// (at our bits if finer): summarized where the peer's summary matched our
// view, fully explicit elsewhere, as many as fit. When even the first bucket
// does not fit, finer buckets are tried.
func (e *Engine) replyDigest(now time.Time, v *peerView, budget int) (Digest, *Coverage) {
	self := e.selfState()
	d := Digest{{ID: *self.id, NodeDigest: self.digest()}}
	used := sizeArrayHeader(16) + sizeDigestEntry(&d[0]) + 2 + 1 + 3*5 + 3
	mark := e.nextMark()
	self.mark = mark
	for i := range v.digest {
		ns, ok := e.lookup(v.digest[i].ID)
		if !ok || ns == self || !e.advertised(ns, now) {
			continue
		}
		entry := DigestEntry{ID: *ns.id, NodeDigest: ns.digest()}
		if used+sizeDigestEntry(&entry) > budget {
			break
		}
		used += sizeDigestEntry(&entry)
		d = append(d, entry)
		ns.mark = mark
	}
	pc := v.cover
	b := max(pc.Bits, e.bitsFor(e.advertisedCount(now)))
	for last := min(b+6, maxBits); ; b++ {
		if c, out, ok := e.replyCover(now, v, d, used, budget, mark, b); ok || b >= last {
			slices.SortFunc(out, compareEntries)
			return out, c
		}
	}
}

// replyCover covers the peer's buckets at bits b (at least the peer's) from
// the start of its coverage, appending the explicit entries to d. ok is
// false when not even the first bucket fits the budget.
func (e *Engine) replyCover(now time.Time, v *peerView, d Digest, used, budget int, mark uint32, b uint8) (*Coverage, Digest, bool) {
	pc := v.cover
	shift := b - pc.Bits
	fine := uint32(uint64(pc.Count) << shift)
	var slab []uint16 // summaries' heartbeats, allocated at the first
	// Start at a random bucket of the peer's coverage whose summary did not
	// match ours (the buckets worth answering: a fully explicit bucket
	// costs tens of entries and fits only early in the answer), or at a
	// random bucket when all matched: when not all of it fits, successive
	// answers then cover all of it.
	skip := uint32(0)
	if o, ok := v.randomMismatch(e.rng); ok {
		// At finer bits the peer's bucket is several of ours, and only
		// some may differ: start at a random one of them, so that an
		// answer with room for only the first does not always miss the
		// others.
		skip = o<<shift + uint32(e.rng.Uint64N(1<<shift))
	} else if fine > 1 {
		skip = uint32(e.rng.Uint64N(uint64(fine)))
	}
	c := &Coverage{Bits: b, First: (pc.First<<shift + skip) & (1<<b - 1)}
	for c.Count < fine {
		k := (c.First + c.Count) & (1<<b - 1)
		if gap := e.emptyRun(k, b); gap > 0 {
			// Empty buckets cost no bytes either way: skip them at once.
			// (Walking them one by one made a 34-byte Syn covering 2^20
			// buckets cost a million look-ups: a CPU amplifier.)
			c.Count += min(gap, fine-c.Count)
			continue
		}
		o := ((skip + c.Count) % fine) >> shift // offset of the peer's bucket
		if v.summarized.has(o) && !v.mismatched.has(o) {
			if slab == nil {
				slab = e.newSlab(budget - used)
			}
			s := e.summarize(now, k, b, mark, &slab)
			size := 0
			if len(s.Heartbeats) > 0 {
				size = summarySize(c.Count, len(s.Heartbeats))
			}
			if used+size > budget {
				break
			}
			used += size
			if len(s.Heartbeats) > 0 {
				c.Summaries = append(c.Summaries, s)
			}
			c.Count++
			continue
		}
		// Fully explicit: every advertised node of the bucket.
		start, size := len(d), 0
		for _, ns := range e.bucketNodes(k, b) {
			if ns.mark == mark || !e.advertised(ns, now) {
				continue
			}
			entry := DigestEntry{ID: *ns.id, NodeDigest: ns.digest()}
			size += sizeDigestEntry(&entry)
			d = append(d, entry)
		}
		if used+size > budget {
			d = d[:start]
			break
		}
		used += size
		c.Count++
	}
	return c, d, c.Count > 0
}

// markWanted flags the nodes of a peer's digest whose state there is newer
// than ours: our next Syns list them, so that a peer sends the delta.
func (e *Engine) markWanted(d Digest) {
	for i := range d {
		ns, ok := e.lookup(d[i].ID)
		if !ok || *ns.id == e.self {
			continue
		}
		if d[i].MaxVersion > ns.maxVersion && d[i].MaxVersion <= maxSafeVersion {
			ns.wanted = true
		}
	}
}
