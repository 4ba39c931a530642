package chitchat

import (
	"net/netip"
	"time"
)

// Bulk state over a stream (docs/design/scale.md §4). The Engine decides
// when a stream exchange is due and with whom; the Server (or a simulator)
// carries it out: Syn (CreateStreamSyn) → SynAck → Ack, each message
// handled by Step with Inbound.Stream, whose budget is
// Config.MaxStreamMessageSize and whose digests are whole and explicit.
//
// Exchanges are due:
//   - at the first round, with a seed: a joining node gets the cluster in
//     one exchange instead of hundreds of datagrams;
//   - every StreamSyncInterval, with a random live peer (a seed while none
//     is live): the safety net of partial digests;
//   - with a peer our datagram delta could not fully serve (its news did
//     not fit), or whose digest disagreed with our view on at least
//     divergedForStream buckets or by differForStream nodes (a datagram answer carries about one
//     bucket explicitly: a node that joined with many others, or is back
//     from a partition, would learn the cluster a bucket at a time), at
//     most once per StreamSyncInterval per peer.

// divergedForStream is the number of mismatched bucket summaries in one
// digest, and differForStream the number of nodes by which their counts
// differ from ours, either of which makes a stream exchange with its
// sender due (a small cluster has one or two buckets, each of which may
// hide many nodes one side lacks).
const (
	divergedForStream = 3
	differForStream   = 8
)

// streamWorthy reports whether the peer's digest disagrees with our view
// by more than datagram answers carry well. In the first StreamSyncInterval
// after our start, any difference in membership does (summaries counting
// nodes one side lacks): a node that started with many others (a cold
// start of the cluster) catches up by stream, and its welcome, within a
// round, instead of learning late joiners second-hand and waiting rounds
// for their heartbeats to rise. (Not a difference of versions: a young
// node in a busy cluster would then stream its whole view at every write.)
func (e *Engine) streamWorthy(now time.Time, v *peerView) bool {
	if e.streams.booted && now.Sub(e.streams.bootedAt) < e.cfg.StreamSyncInterval && v.differ > 0 {
		return true
	}
	return v.diverged >= divergedForStream || v.differ >= differForStream
}

// streamState schedules stream exchanges.
type streamState struct {
	booted   bool      // the first round asked for one with a seed
	bootedAt time.Time // when
	// immediate holds when messages last started streams at once
	// (Output.Streams), at most immediateStreams times.
	immediate []time.Time
	last      time.Time // the last periodic exchange asked for
	// wanted lists peers a delta could not fully serve, to ask for at the
	// next round; those asked for by a message whose sender we had heard
	// from at its address before (heard) may be asked for at once.
	wanted []wantedStream
	// heard: the message Step is handling came from a sender heard from
	// at its address before it.
	heard bool
	// asked remembers when an exchange with each peer was last asked for;
	// bounded by pruning entries older than an interval.
	asked map[netip.AddrPort]time.Time
	// truncated is set by computeDelta when news did not fit.
	truncated bool
}

func (e *Engine) streamsEnabled() bool { return !e.cfg.DisableStreams }

// wantStream asks for a stream exchange with the sender of a message
// whose answer could not carry all its news, if we know it at that address.
func (e *Engine) wantStream(now time.Time, in Inbound, sender NodeID) {
	st := &e.streams
	if !e.streamsEnabled() || in.Stream || !e.knownAt(sender, in.From) {
		return
	}
	if at, ok := st.asked[sender.Addr]; ok && now.Sub(at) < e.cfg.StreamSyncInterval {
		return
	}
	for i := range st.wanted {
		if st.wanted[i].addr == sender.Addr {
			st.wanted[i].heard = st.wanted[i].heard || st.heard
			return
		}
	}
	if len(st.wanted) < 16 {
		st.wanted = append(st.wanted, wantedStream{addr: sender.Addr, heard: st.heard})
	}
}

// heardFrom marks the stream asked for with addr, if any, as asked for by
// a sender heard from before: the peer has now shown life there twice.
func (st *streamState) heardFrom(addr netip.AddrPort) {
	for i := range st.wanted {
		if st.wanted[i].addr == addr {
			st.wanted[i].heard = true
		}
	}
}

// wantedStream is a peer wantStream asked for, and whether the message
// that asked came from a sender heard from before (wantedStreams).
type wantedStream struct {
	addr  netip.AddrPort
	heard bool
}

// dueStreams returns the peers to exchange with by stream this round.
func (e *Engine) dueStreams(now time.Time) []netip.AddrPort {
	st := &e.streams
	if !e.streamsEnabled() {
		return nil
	}
	var out []netip.AddrPort
	ask := func(a netip.AddrPort) {
		if st.asked == nil {
			st.asked = make(map[netip.AddrPort]time.Time)
		}
		st.asked[a] = now
		out = append(out, a)
	}
	t := e.targetSets()
	if !st.booted {
		st.booted, st.last, st.bootedAt = true, now, now
		if len(t.seeds) > 0 {
			ask(t.seeds[e.rng.IntN(len(t.seeds))])
		}
	} else if now.Sub(st.last) >= e.cfg.StreamSyncInterval {
		st.last = now
		switch {
		case len(t.live) > 0:
			ask(t.live[e.rng.IntN(len(t.live))].id.Addr)
		case len(t.seeds) > 0:
			ask(t.seeds[e.rng.IntN(len(t.seeds))])
		}
	}
	out = append(out, e.wantedStreams(now, false)...)
	for a, at := range st.asked {
		if now.Sub(at) >= e.cfg.StreamSyncInterval {
			delete(st.asked, a)
		}
	}
	return out
}

// wantedStreams returns the peers whose exchange wantStream asked for,
// unless one was asked for within StreamSyncInterval, and forgets them.
// Step returns them at once (Output.Streams), not at the next round: a
// node that joined with many others, or is back from a partition, catches
// up within milliseconds of the first digest that shows how far behind it
// is. With heardOnly (at once), only the peers asked for by messages from
// senders heard from before: the others, which a spoofed Syn may have
// queued, wait for the round.
func (e *Engine) wantedStreams(now time.Time, heardOnly bool) []netip.AddrPort {
	st := &e.streams
	if len(st.wanted) == 0 {
		return nil
	}
	var out []netip.AddrPort
	keep := st.wanted[:0]
	for _, w := range st.wanted {
		if heardOnly && !w.heard {
			keep = append(keep, w)
			continue
		}
		a := w.addr
		if at, ok := st.asked[a]; !ok || now.Sub(at) >= e.cfg.StreamSyncInterval {
			if st.asked == nil {
				st.asked = make(map[netip.AddrPort]time.Time)
			}
			st.asked[a] = now
			out = append(out, a)
		}
	}
	clear(st.wanted[len(keep):])
	st.wanted = keep
	return out
}

// immediateStreams is how many messages per gossip interval may start
// stream exchanges at once (Output.Streams).
const immediateStreams = 4

// immediateStreamAllowed reports whether a message may start streams at
// once: fewer than immediateStreams did within the last gossip interval.
func (e *Engine) immediateStreamAllowed(now time.Time) bool {
	st := &e.streams
	keep := st.immediate[:0]
	for _, t := range st.immediate {
		if now.Sub(t) < e.cfg.GossipInterval {
			keep = append(keep, t)
		}
	}
	st.immediate = keep
	return len(st.immediate) < immediateStreams
}

// welcome returns the alive notices of ourselves and the nodes we hold
// live, but to, within the stream budget (Output.Welcome).
func (e *Engine) welcome(to NodeID) *Push {
	m := &Push{ClusterID: e.cfg.ClusterID}
	if !e.pushEnabled() {
		return m
	}
	size := EncodedSize(m) + 8 // the notices' array header may grow
	for _, ns := range e.states {
		if (!ns.live && *ns.id != e.self) || ns.left || *ns.id == to {
			continue
		}
		n := Notice{Kind: NoticeAlive, ID: *ns.id, Heartbeat: ns.heartbeat}
		if size += sizeNotice(&n); size > e.cfg.MaxStreamMessageSize {
			break
		}
		m.Notices = append(m.Notices, n)
	}
	return m
}
