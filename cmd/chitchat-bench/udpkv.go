package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// kvPrefix prefixes the keys of the key-spread phase.
const kvPrefix = "bench.kv."

// spreadRecorder records when each node applied each key of the
// key-spread phase, from Server.Subscribe callbacks (which run on a
// goroutine of each subscription, in order, as the node learns the key).
type spreadRecorder struct {
	mu      sync.Mutex
	written []time.Time   // per key: when Set was called; zero before
	at      [][]time.Time // per key, per node: when the node had it
	missing []int         // per key: nodes that do not have it yet
	left    int           // keys that some node lacks
	done    chan struct{} // closed when left reaches 0
}

func newSpreadRecorder(nodes, keys int) *spreadRecorder {
	r := &spreadRecorder{written: make([]time.Time, keys), at: make([][]time.Time, keys),
		missing: make([]int, keys), left: keys, done: make(chan struct{})}
	for k := range r.at {
		r.at[k] = make([]time.Time, nodes)
		r.missing[k] = nodes
	}
	if keys == 0 {
		close(r.done)
	}
	return r
}

// seen records that node i has key k at now (the first time only).
func (r *spreadRecorder) seen(k, i int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k < 0 || k >= len(r.at) || !r.at[k][i].IsZero() {
		return
	}
	r.at[k][i] = now
	r.missing[k]--
	if r.missing[k] == 0 {
		r.left--
		if r.left == 0 {
			close(r.done)
		}
	}
}

// spreads returns, for each key, the time from its write to the last node
// having it; +Inf for a key some node lacks.
func (r *spreadRecorder) spreads() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]float64, len(r.at))
	for k, ats := range r.at {
		if r.missing[k] > 0 {
			out[k] = math.Inf(1)
			continue
		}
		last := slices.MaxFunc(ats, time.Time.Compare)
		out[k] = max(0, last.Sub(r.written[k]).Seconds())
	}
	return out
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// kvSpread writes `writes` keys, one on a random node every gap on average
// (uniform in [0.5, 1.5] gap, so that writes fall at every phase of the
// gossip round), and measures how long each takes to reach every node. It
// returns the p50 and p99 (nil when not every key arrived) and the errors.
func kvSpread(servers []*chitchat.Server, writes int, gap, timeout time.Duration, r *rand.Rand) (p50, p99 *float64, errs []string) {
	rec := newSpreadRecorder(len(servers), writes)
	for i, s := range servers {
		cancel := s.Subscribe(kvPrefix, func(kc chitchat.KeyChange) {
			if k, err := strconv.Atoi(kc.Key); err == nil {
				rec.seen(k, i, time.Now())
			}
		})
		defer cancel()
	}
	for k := range writes {
		time.Sleep(time.Duration(float64(gap) * (0.5 + r.Float64())))
		owner := r.IntN(len(servers))
		now := time.Now()
		rec.mu.Lock()
		rec.written[k] = now
		rec.mu.Unlock()
		rec.seen(k, owner, now) // the writer has it
		if err := servers[owner].Set(kvPrefix+strconv.Itoa(k), "v"); err != nil {
			errs = append(errs, fmt.Sprintf("key-spread write %d on node %d: %v", k, owner, err))
		}
	}
	select {
	case <-rec.done:
	case <-time.After(timeout):
	}
	sp := rec.spreads()
	slices.Sort(sp)
	if lost, _ := slices.BinarySearch(sp, math.Inf(1)); lost < len(sp) {
		errs = append(errs, fmt.Sprintf("key spread: %d of %d keys had not reached every node within %v", len(sp)-lost, len(sp), timeout))
	}
	if len(sp) == 0 {
		return nil, nil, errs
	}
	if v := percentile(sp, 50); !math.IsInf(v, 1) {
		p50 = num(v, 4)
	}
	if v := percentile(sp, 99); !math.IsInf(v, 1) {
		p99 = num(v, 4)
	}
	return p50, p99, errs
}

// leaveSeen makes node j leave gracefully (Server.Leave) and returns the
// time until every other node's live-nodes watch dropped it, checking
// that each then reports it left (not dead). servers[i] is node i; nil
// entries are nodes no longer running.
func leaveSeen(servers []*chitchat.Server, j int, rec *recorder, timeout time.Duration) (*float64, []string) {
	var observers []int
	for i, s := range servers {
		if s != nil && i != j {
			observers = append(observers, i)
		}
	}
	rec.setVictim(j)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	leaveErr := make(chan error, 1)
	go func() { leaveErr <- servers[j].Leave(ctx) }()
	all := waitFor(start.Add(timeout), func() bool {
		for _, at := range rec.deadAtOf(observers) {
			if at.IsZero() {
				return false
			}
		}
		return true
	})
	var errs []string
	if err := <-leaveErr; err != nil {
		errs = append(errs, fmt.Sprintf("Leave of node %d: %v", j, err))
	}
	if !all {
		return nil, append(errs, fmt.Sprintf("leave: not every node dropped node %d from its live set within %v", j, timeout))
	}
	last := slices.MaxFunc(rec.deadAtOf(observers), time.Time.Compare)
	id := servers[j].Self()
	var dead []string
	for _, i := range observers {
		if !slices.Contains(servers[i].Snapshot().Left, id) {
			dead = append(dead, nodeName(i))
		}
	}
	if len(dead) > 0 {
		errs = append(errs, fmt.Sprintf("leave: %s do not report node %d left", strings.Join(dead, ", "), j))
	}
	return num(max(0, last.Sub(start).Seconds()), 4), errs
}
