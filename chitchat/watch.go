package chitchat

import (
	"context"
	"iter"
	"sync"
)

// watch holds a latest value. Readers wait for a newer one; intermediate
// values may be skipped (coalescing), as with upstream's tokio watch channel.
type watch[T any] struct {
	mu      sync.Mutex
	val     T
	gen     uint64
	changed chan struct{} // closed at the next publish
	closed  bool
}

func newWatch[T any](initial T) *watch[T] {
	return &watch[T]{val: initial, changed: make(chan struct{})}
}

// publishGen publishes v unless gen is not newer than the current value's
// generation: the engine numbers its publications, and a round that did not
// publish must not overwrite a newer value.
func (w *watch[T]) publishGen(v T, gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || gen <= w.gen {
		return
	}
	w.val = v
	w.gen = gen
	close(w.changed)
	w.changed = make(chan struct{})
}

// close wakes every waiter for the last time.
func (w *watch[T]) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.changed)
	}
}

func (w *watch[T]) load() (T, uint64, <-chan struct{}, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.val, w.gen, w.changed, w.closed
}

// seq yields the current value at once, then every newer value, until ctx
// is done, the watch is closed, or the consumer stops.
func (w *watch[T]) seq(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		v, gen, changed, closed := w.load()
		if !yield(v) {
			return
		}
		for !closed {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			var g uint64
			v, g, changed, closed = w.load()
			if g != gen {
				gen = g
				if !yield(v) {
					return
				}
			}
		}
	}
}
