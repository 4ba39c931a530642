package main

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gossipkit/chitchat-go/internal/sim"
)

// loadKey is the key every node rewrites during the steady window when
// -writes-per-node-s is set: an application's periodically updated value
// (a load figure, a heartbeat of its own).
const loadKey = "bench.load"

// write is one background write: node at a virtual time.
type write struct {
	at   time.Duration // from the start of the window
	node int
}

// loadSchedule returns the background writes of a window of length w at
// perNodeS writes per node per second: node i writes every 1/perNodeS, from
// a random phase of its own, as independent applications would.
func loadSchedule(n int, perNodeS float64, w time.Duration, r *rand.Rand) []write {
	if perNodeS <= 0 {
		return nil
	}
	period := time.Duration(float64(time.Second) / perNodeS)
	var out []write
	for i := range n {
		for at := time.Duration(r.Int64N(int64(period))); at < w; at += period {
			out = append(out, write{at, i})
		}
	}
	slices.SortFunc(out, func(a, b write) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.node - b.node
	})
	return out
}

// runWithLoad runs s for w of virtual time, making the scheduled writes
// with Sim.Set (the write, then its push, as Server.Set does). It returns
// the number of writes made and the first error.
func runWithLoad(s *sim.Sim, w time.Duration, sched []write) (int, error) {
	start := s.Elapsed()
	for k, wr := range sched {
		s.RunFor(wr.at - (s.Elapsed() - start))
		if err := s.Set(wr.node, loadKey, strconv.Itoa(k)); err != nil {
			return k, err
		}
	}
	s.RunFor(w - (s.Elapsed() - start))
	return len(sched), nil
}
