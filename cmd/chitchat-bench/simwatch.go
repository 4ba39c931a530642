package main

import (
	"math/bits"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/sim"
)

// liveTracker follows every simulated node's live-nodes watch (the list
// an application sees, Engine.LiveNodesWatch) at each point where it can
// change: after each round and each message of the node (sim.AfterStep).
// So it sees every live→dead transition at its exact virtual time, even
// one refuted a millisecond later, which polling would miss.
//
// Each observer's published live set is kept as a bitset over node
// indexes: N²/8 bytes, 12.5 MB at N = 10,000.
type liveTracker struct {
	s     *sim.Sim
	words int
	gen   []uint64 // per observer: the watch generation last read
	live  []uint64 // observer i's live set: live[i*words : (i+1)*words]
	count []int    // per observer: nodes in its live set, self included
	cur   []uint64 // scratch

	killed   []bool
	victim   int // the node killed for the detection figure; -1 before
	deadAt   []time.Time
	pending  int // survivors that have not seen the victim dead yet
	killedAt time.Time

	// FalseDeaths counts live→dead transitions, at any observer, of nodes
	// that were not killed; FalseSubjects how many distinct nodes they hit.
	FalseDeaths int
	falseHit    []bool
}

func newLiveTracker(s *sim.Sim) *liveTracker {
	n := s.N()
	w := (n + 63) / 64
	t := &liveTracker{s: s, words: w, gen: make([]uint64, n), live: make([]uint64, n*w),
		count: make([]int, n), cur: make([]uint64, w), killed: make([]bool, n), victim: -1,
		falseHit: make([]bool, n)}
	s.AfterStep = t.observe
	return t
}

// index returns the node index of id (sim.Addr's inverse), or -1.
func (t *liveTracker) index(id chitchat.NodeID) int {
	i := int(id.Addr.Port()) - int(sim.Addr(0).Port())
	if i < 0 || i >= t.s.N() || id.Addr != sim.Addr(i) {
		return -1
	}
	return i
}

// observe reads observer i's watch if it was published again since the
// last read, and records the transitions.
func (t *liveTracker) observe(i int) {
	g, nodes := t.s.Engine(i).LiveNodesWatch()
	if g == t.gen[i] {
		return
	}
	t.gen[i] = g
	clear(t.cur)
	for _, ns := range nodes {
		if j := t.index(ns.ID()); j >= 0 {
			t.cur[j/64] |= 1 << (j % 64)
		}
	}
	prev := t.live[i*t.words : (i+1)*t.words]
	c := 0
	for k := range prev {
		c += bits.OnesCount64(t.cur[k])
		for gone := prev[k] &^ t.cur[k]; gone != 0; gone &= gone - 1 {
			t.lost(i, k*64+bits.TrailingZeros64(gone))
		}
		if t.victim >= 0 && t.victim/64 == k && t.cur[k]&^prev[k]&(1<<(t.victim%64)) != 0 && !t.deadAt[i].IsZero() {
			t.deadAt[i] = time.Time{} // the victim is live again here: its detection starts over
			t.pending++
		}
	}
	copy(prev, t.cur)
	t.count[i] = c
}

// lost records that observer i no longer lists node j live.
func (t *liveTracker) lost(i, j int) {
	if !t.killed[j] {
		t.FalseDeaths++
		t.falseHit[j] = true
		return
	}
	if j == t.victim && t.deadAt[i].IsZero() {
		t.deadAt[i] = t.s.Now()
		t.pending--
	}
}

// FalseSubjects returns how many distinct nodes were falsely seen dead.
func (t *liveTracker) FalseSubjects() int {
	n := 0
	for _, hit := range t.falseHit {
		if hit {
			n++
		}
	}
	return n
}

// allLive reports whether observer i lists n nodes live.
func (t *liveTracker) allLive(i, n int) bool { return t.count[i] == n }

// kill stops node j now and starts timing its detection by every node
// still up.
func (t *liveTracker) kill(j int) {
	t.s.Kill(j)
	t.killed[j] = true
	t.victim, t.killedAt = j, t.s.Now()
	t.deadAt = make([]time.Time, t.s.N())
	t.pending = 0
	for i := range t.s.N() {
		if i == j || !t.s.Node(i).Up() {
			continue
		}
		if t.live[i*t.words+j/64]&(1<<(j%64)) == 0 {
			t.deadAt[i] = t.killedAt // not live here at the kill (never was, or already dead)
			continue
		}
		t.pending++
	}
}

// detected reports whether every survivor has seen the victim dead.
func (t *liveTracker) detected() bool { return t.victim >= 0 && t.pending == 0 }

// detectTimes returns, for every survivor that saw the victim dead, the
// time it took.
func (t *liveTracker) detectTimes() []time.Duration {
	var out []time.Duration
	for i, at := range t.deadAt {
		if i != t.victim && t.s.Node(i).Up() && !at.IsZero() {
			out = append(out, at.Sub(t.killedAt))
		}
	}
	return out
}
