package chitchattest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// NodeIDs returns the IDs of a live-nodes value, in its order.
func NodeIDs(states []*chitchat.NodeState) []chitchat.NodeID {
	ids := make([]chitchat.NodeID, 0, len(states))
	for _, s := range states {
		ids = append(ids, s.ID())
	}
	return ids
}

// SameIDs reports whether states holds exactly the ids want (in any order).
func SameIDs(states []*chitchat.NodeState, want ...chitchat.NodeID) bool {
	got := NodeIDs(states)
	if len(got) != len(want) {
		return false
	}
	w := slices.Clone(want)
	slices.SortFunc(w, chitchat.NodeID.Compare)
	slices.SortFunc(got, chitchat.NodeID.Compare)
	return slices.Equal(got, w)
}

// ErrTimeout is returned by the waits when their context ends first.
var ErrTimeout = errors.New("chitchattest: timed out")

// WaitWatch consumes node i's live-nodes watch (the current value first,
// then each new one) until pred holds, and returns that value and the
// virtual time it took. It returns an error wrapping ErrTimeout, with the
// last value seen, when ctx ends first or the node stops.
func (c *Cluster) WaitWatch(ctx context.Context, i int, pred func([]*chitchat.NodeState) bool) ([]*chitchat.NodeState, time.Duration, error) {
	srv := c.nodes[i].srv
	if srv == nil {
		return nil, 0, fmt.Errorf("chitchattest: node %d is stopped", i)
	}
	start := time.Now()
	var last []*chitchat.NodeState
	seen := 0
	for v := range srv.WatchLiveNodes(ctx) {
		seen++
		last = v
		if pred(v) {
			return v, time.Since(start), nil
		}
	}
	return last, time.Since(start), fmt.Errorf("%w after %v (virtual) waiting on node %d (%v); %d values seen, last: %v",
		ErrTimeout, time.Since(start), i, c.ID(i), seen, NodeIDs(last))
}

// WaitLive waits until node i's live-nodes watch yields exactly the ids
// want (upstream's wait_for_chitchat_state) and returns the virtual time it
// took.
func (c *Cluster) WaitLive(ctx context.Context, i int, want ...chitchat.NodeID) (time.Duration, error) {
	_, d, err := c.WaitWatch(ctx, i, func(v []*chitchat.NodeState) bool { return SameIDs(v, want...) })
	if err != nil {
		return d, fmt.Errorf("want live %v: %w", want, err)
	}
	return d, nil
}

// MustWaitLive is WaitLive with a virtual timeout, failing the test when it
// expires.
func (c *Cluster) MustWaitLive(timeout time.Duration, i int, want ...chitchat.NodeID) time.Duration {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), timeout)
	defer cancel()
	d, err := c.WaitLive(ctx, i, want...)
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// Watcher delivers the values of one node's live-nodes watch one at a time,
// for tests that care about the sequence ("the next value has 2 nodes").
type Watcher struct {
	ch     chan []*chitchat.NodeState
	cancel context.CancelFunc
}

// Watch starts watching node i's live nodes; the first value Next returns
// is the current one. The watcher stops with the node, with Stop, or at the
// end of the test.
func (c *Cluster) Watch(i int) *Watcher {
	c.t.Helper()
	srv := c.nodes[i].srv
	if srv == nil {
		c.t.Fatalf("chitchattest: Watch(%d): node is stopped", i)
	}
	ctx, cancel := context.WithCancel(c.t.Context())
	w := &Watcher{ch: make(chan []*chitchat.NodeState), cancel: cancel}
	go func() {
		defer close(w.ch)
		for v := range srv.WatchLiveNodes(ctx) {
			select {
			case w.ch <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	c.t.Cleanup(w.Stop)
	return w
}

// Next returns the next value, or false if none came within timeout
// (virtual) or the watch ended.
func (w *Watcher) Next(timeout time.Duration) ([]*chitchat.NodeState, bool) {
	return recvWithin(w.ch, timeout)
}

// recvWithin receives from ch, waiting at most timeout (virtual). It
// reports false on timeout or when ch is closed. A value already there is
// returned even with a timeout of 0: it never loses that race.
func recvWithin[T any](ch <-chan T, timeout time.Duration) (T, bool) {
	select {
	case v, ok := <-ch:
		return v, ok
	default:
	}
	var zero T
	if timeout <= 0 {
		return zero, false
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-timer.C:
		return zero, false
	}
}

// Stop ends the watcher.
func (w *Watcher) Stop() { w.cancel() }
