package chitchat

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// Hostile review 10: confirming deaths by asking the node (confirm.go,
// c36658c), as a hostile peer plays it. This file holds the network the
// tests drive: partialPushNet's engines, with loss, dead and mute nodes, a
// forger's turn after each Tick, and counts of false deaths and of Syns.

// hostile10Net is a partial-digest network (monitors in force) whose
// datagrams (Syn, SynAck, Ack, each push) are each lost with probability
// loss, drawn from a seeded generator.
type hostile10Net struct {
	*pushNet
	rng  *rand.Rand
	loss float64
	// down nodes are dead: they neither tick nor answer. mute nodes tick
	// and gossip but answer no Syn. unheard nodes' Syns of their rounds
	// are all lost (every other datagram goes).
	down, mute, unheard map[*Engine]bool
	// afterTick, if set, runs after each engine's Tick (a forger's turn).
	afterTick func(e *Engine)
	// synsTo counts the Syns sent to each address (targets of rounds);
	// syns those sent by each node to each address.
	synsTo     map[netip.AddrPort]int
	syns       map[[2]netip.AddrPort]int
	synBytesTo map[netip.AddrPort]int
	// deaths counts the times a node not down went from live to not live
	// at an observer not down; deadRounds the observer-rounds it spent
	// not live there; pairs the (observer, node) pairs concerned.
	deaths, deadRounds int
	pairs              map[[2]NodeID]bool
	dead               map[[2]NodeID]bool // not live after the last round
}

func hostile10NewNet(t *testing.T, n int, loss float64, seed uint64) *hostile10Net {
	t.Helper()
	l := &hostile10Net{pushNet: partialPushNet(t, n), rng: rand.New(rand.NewPCG(seed, seed)), loss: loss,
		down: map[*Engine]bool{}, mute: map[*Engine]bool{}, unheard: map[*Engine]bool{}, synsTo: map[netip.AddrPort]int{}, synBytesTo: map[netip.AddrPort]int{}, syns: map[[2]netip.AddrPort]int{},
		pairs: map[[2]NodeID]bool{}, dead: map[[2]NodeID]bool{}}
	l.drop = func(to *Engine) bool { return l.down[to] || l.lost() }
	return l
}

func (l *hostile10Net) lost() bool { return l.loss > 0 && l.rng.Float64() < l.loss }

// step delivers m from a to b unless it is lost or b is down, with b's
// pushes, and returns b's reply.
func (l *hostile10Net) step(a, b *Engine, m Message) Message {
	if m == nil || l.down[b] || l.lost() {
		return nil
	}
	out := b.Step(l.now, Inbound{From: a.Self().Addr, Authentic: true}, wire(l.t, m))
	l.deliver(b, out.Pushes, 1)
	return out.Reply
}

// round runs a gossip round at every node not down, and counts false
// deaths.
func (l *hostile10Net) round() {
	l.now = l.now.Add(time.Second)
	for _, e := range l.engines {
		if l.down[e] {
			continue
		}
		r := e.Tick(l.now)
		if l.afterTick != nil {
			l.afterTick(e)
		}
		l.deliver(e, r.Pushes, 1)
		size := len(EncodeMessage(r.Syn))
		for _, to := range r.Targets {
			l.synsTo[to]++
			l.synBytesTo[to] += size
			l.syns[[2]netip.AddrPort{e.Self().Addr, to}]++
			peer := l.byAddr[to]
			if peer == nil || peer == e || l.unheard[e] {
				continue
			}
			synAck := l.step(e, peer, r.Syn)
			if l.mute[peer] {
				continue
			}
			if synAck != nil {
				l.step(e, peer, l.step(peer, e, synAck))
			}
		}
	}
	for _, e := range l.engines {
		if l.down[e] {
			continue
		}
		live := map[NodeID]bool{}
		for _, id := range e.LiveNodes() {
			live[id] = true
		}
		for _, o := range l.engines {
			if o == e || l.down[o] {
				continue
			}
			key := [2]NodeID{e.Self(), o.Self()}
			if !live[o.Self()] {
				l.deadRounds++
				if !l.dead[key] {
					l.deaths++
				}
				l.pairs[key] = true
			}
			l.dead[key] = !live[o.Self()]
		}
	}
}

// opposite returns the engine halfway round the ring from e (the n/2-th
// of e's successors): with more than a few nodes, neither one of e's ring
// monitors nor one it monitors.
func (l *hostile10Net) opposite(e *Engine) *Engine {
	return l.byAddr[ringFrom(e)[len(l.engines)/2].id.Addr]
}

// roundsDead runs rounds rounds and returns in how many of them x was not
// live at e after the round.
func (l *hostile10Net) roundsDead(e, x *Engine, rounds int) int {
	dead := 0
	for range rounds {
		l.round()
		if !isLive(e, x.Self()) {
			dead++
		}
	}
	return dead
}

// seenDead returns how many nodes not down hold x not live.
func (l *hostile10Net) seenDead(x *Engine) int {
	k := 0
	for _, e := range l.engines {
		if e != x && !l.down[e] && !isLive(e, x.Self()) {
			k++
		}
	}
	return k
}
