package main

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
)

// recorder collects the dead marks memberlist reports through each node's
// EventDelegate: NotifyLeave is memberlist's "this node is dead (or left)",
// the counterpart of a node leaving chitchat's live-nodes watch. Callbacks
// run under memberlist's state lock: they only stamp and append.
type recorder struct {
	victim string

	mu       sync.Mutex
	victimAt []time.Time // per observer: when it marked the victim dead; zero while it holds it alive
	marks    []deadMark  // every dead mark of any node by any node
	total    atomic.Int64
}

type deadMark struct {
	subject string
	at      time.Time
}

func newRecorder(n int) *recorder {
	return &recorder{victim: nodeName(n - 1), victimAt: make([]time.Time, n)}
}

// observer is the EventDelegate of node i.
type observer struct {
	i   int
	rec *recorder
}

var _ memberlist.EventDelegate = observer{}

// NotifyJoin: the victim alive again (a refuted false death) is no longer
// marked dead by this observer.
func (o observer) NotifyJoin(n *memberlist.Node) {
	if n.Name != o.rec.victim {
		return
	}
	o.rec.mu.Lock()
	o.rec.victimAt[o.i] = time.Time{}
	o.rec.mu.Unlock()
}

func (o observer) NotifyLeave(n *memberlist.Node) {
	now := time.Now()
	o.rec.mu.Lock()
	defer o.rec.mu.Unlock()
	o.rec.marks = append(o.rec.marks, deadMark{n.Name, now})
	o.rec.total.Add(1)
	if n.Name == o.rec.victim {
		o.rec.victimAt[o.i] = now
	}
}

func (observer) NotifyUpdate(*memberlist.Node) {}

// falseDeaths counts the dead marks of nodes other than except in [from, to):
// distinct subjects, and (observer, subject) marks.
func (r *recorder) falseDeaths(from, to time.Time, except string) (subjects, marks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool)
	for _, m := range r.marks {
		if m.subject != except && !m.at.Before(from) && m.at.Before(to) {
			marks++
			seen[m.subject] = true
		}
	}
	return len(seen), marks
}

// victimDeadAt returns, for the first observers nodes, when each marked the
// victim dead (zero if it has not).
func (r *recorder) victimDeadAt(observers int) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.victimAt[:observers])
}

// suspicionCounter counts memberlist's "memberlist.msg.suspect" metric, which
// memberlist increments each time a node moves another to the suspect state.
// Every other metric is discarded.
type suspicionCounter struct {
	metrics.BlackholeSink
	n atomic.Uint64
}

func (s *suspicionCounter) IncrCounterWithLabels(key []string, _ float32, _ []metrics.Label) {
	if slices.Equal(key, []string{"memberlist", "msg", "suspect"}) {
		s.n.Add(1)
	}
}

// installSuspicionCounter makes s go-metrics' global sink, the one memberlist
// reports to. The bare Config starts no runtime-metrics goroutine.
func installSuspicionCounter(s *suspicionCounter) error {
	_, err := metrics.NewGlobal(&metrics.Config{FilterDefault: true, TimerGranularity: time.Millisecond}, s)
	return err
}
