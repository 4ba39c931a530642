package chitchat

import "net/netip"

// gossipCount is the number of live peers gossiped with per round.
const gossipCount = 3

// randSource is the part of *rand.Rand target selection uses; tests pass a
// source whose draws are 0.
type randSource interface {
	Float64() float64
	IntN(n int) int
}

// selectTargets picks a round's gossip targets (docs/PROTOCOL.md §10.1): up to k live
// peers (three, gossipCount, unless a ring monitor takes one's place) (any peers while none is live), a dead peer with probability
// |dead|/(|live|+1), and a seed when no chosen peer was one, or when there
// are fewer live peers than seeds, with probability |seeds|/(|live|+|dead|)
// (always while nobody is live). Seeds keep a cluster that split at start-up
// from staying split (CASSANDRA-150). The three groups are not deduplicated
// against each other, as upstream. Inputs are sorted, deduplicated sets.
func selectTargets[T any](r randSource, peers, live, dead []T, addr func(T) netip.AddrPort, seeds []netip.AddrPort, k int) (nodes []netip.AddrPort, deadTarget, seedTarget netip.AddrPort) {
	pool := live
	if len(pool) == 0 {
		pool = peers
	}
	nodes = sample(r, pool, addr, k)
	gossipedWithSeed := false
	for _, n := range nodes {
		if contains(seeds, n) {
			gossipedWithSeed = true
			break
		}
	}
	pDead := float64(len(dead)) / float64(len(live)+1)
	if u := r.Float64(); pDead > u && len(dead) > 0 {
		deadTarget = addr(dead[r.IntN(len(dead))])
	}
	if !gossipedWithSeed || len(live) < len(seeds) {
		pSeed := float64(len(seeds)) / float64(len(live)+len(dead))
		if u := r.Float64(); (len(live) == 0 || u <= pSeed) && len(seeds) > 0 {
			seedTarget = seeds[r.IntN(len(seeds))]
		}
	}
	return nodes, deadTarget, seedTarget
}

// sample returns the addresses of up to k distinct elements of s chosen
// uniformly: the first k elements of a partial Fisher-Yates shuffle of s,
// without copying or modifying s (it is the engine's cached set). The
// result has room for the dead and seed targets Tick appends.
func sample[T any](r randSource, s []T, addr func(T) netip.AddrPort, k int) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, k+2)
	if len(s) <= k {
		for _, x := range s {
			out = append(out, addr(x))
		}
		return out
	}
	// Step i of the shuffle swaps positions i and j >= i, and position i
	// is final from then on: out receives it, and moved records where the
	// element that was at i went, the only change later steps can see.
	var buf [gossipCount]moved[T]
	mv := buf[:0]
	for i := range k {
		j := i + r.IntN(len(s)-i)
		ai, aj := elemAt(s, mv, i), elemAt(s, mv, j)
		mv = append(mv, moved[T]{j, ai})
		out = append(out, addr(aj))
	}
	return out
}

// moved is an element of the shuffled set and its new position.
type moved[T any] struct {
	pos int
	x   T
}

// elemAt returns the element at position p of s after the moves (the
// latest move to p wins).
func elemAt[T any](s []T, mv []moved[T], p int) T {
	for i := len(mv) - 1; i >= 0; i-- {
		if mv[i].pos == p {
			return mv[i].x
		}
	}
	return s[p]
}

// addrOf is the identity, for sets of addresses.
func addrOf(a netip.AddrPort) netip.AddrPort { return a }

// nodeAddr is a node's advertised address, for sets of nodes.
func nodeAddr(ns *NodeState) netip.AddrPort { return ns.id.Addr }

func contains(sorted []netip.AddrPort, a netip.AddrPort) bool {
	for _, s := range sorted {
		if s == a {
			return true
		}
	}
	return false
}
