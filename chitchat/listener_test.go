package chitchat

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Upstream's listener.rs tests (T27–T30). "Dropping the handle" is calling
// the cancel function; "forever" is never calling it.

// T27 test_listeners_simple
func TestT27_ListenersSimple(t *testing.T) {
	l := newListeners()
	var got []KeyChange
	cancel := l.subscribe("prefix:", func(c KeyChange) { got = append(got, c) })
	node := id(10001)
	l.fire("prefix:strippedprefix", "value", node)
	want := []KeyChange{{Key: "strippedprefix", Value: "value", Node: node}}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	cancel()
	cancel() // harmless
	l.fire("prefix:strippedprefix", "value", node)
	if len(got) != 1 {
		t.Errorf("%d events after unsubscribing, want 1", len(got))
	}
	if l.len() != 0 || len(l.prefixes) != 0 {
		t.Errorf("registry not empty after unsubscribing: %d listeners, prefixes %q", l.len(), l.prefixes)
	}
}

// T28 test_listeners_empty_prefix
func TestT28_ListenersEmptyPrefix(t *testing.T) {
	l := newListeners()
	var got []KeyChange
	l.subscribe("", func(c KeyChange) { got = append(got, c) })
	l.fire("prefix:strippedprefix", "value", id(1))
	want := []KeyChange{{Key: "prefix:strippedprefix", Value: "value", Node: id(1)}}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

// T29 test_listeners_forever
func TestT29_ListenersForever(t *testing.T) {
	l := newListeners()
	n := 0
	_ = l.subscribe("prefix:", func(KeyChange) { n++ })
	l.fire("prefix:a", "v", id(1))
	l.fire("prefix:a", "v", id(1))
	if n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}

// T30 test_listeners_prefixes
func TestT30_ListenersPrefixes(t *testing.T) {
	l := newListeners()
	var counts [5]int
	for i, p := range []string{"", "b", "bb", "bb", "bc"} {
		l.subscribe(p, func(KeyChange) { counts[i]++ })
	}
	steps := []struct {
		key  string
		want [5]int
	}{
		{"hello", [5]int{1, 0, 0, 0, 0}},
		{"", [5]int{2, 0, 0, 0, 0}},
		{"a", [5]int{3, 0, 0, 0, 0}},
		{"b", [5]int{4, 1, 0, 0, 0}},
		{"ba", [5]int{5, 2, 0, 0, 0}},
		{"bb", [5]int{6, 3, 1, 1, 0}},
	}
	for _, s := range steps {
		l.fire(s.key, "v", id(1))
		if counts != s.want {
			t.Errorf("after %q counters = %v, want %v", s.key, counts, s.want)
		}
	}
}

// As upstream: "" listeners first, then prefixes in lexicographic order;
// within a prefix, subscription order.
func TestListenerCallOrder(t *testing.T) {
	l := newListeners()
	var order []string
	for _, p := range []string{"ab", "", "a", "ab"} {
		l.subscribe(p, func(c KeyChange) { order = append(order, p+"|"+c.Key) })
	}
	l.fire("abc", "v", id(1))
	want := []string{"|abc", "a|bc", "ab|c", "ab|c"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("call order mismatch (-want +got):\n%s", diff)
	}
}

// docs/PROTOCOL.md §14: upstream panics on keys whose first character is multi-byte;
// matching is bytewise here.
func TestListenerMultiByteKeys(t *testing.T) {
	l := newListeners()
	var got []string
	l.subscribe("é", func(c KeyChange) { got = append(got, c.Key) })
	l.subscribe("\xc3", func(c KeyChange) { got = append(got, "byte:"+c.Key) })
	l.fire("été", "v", id(1))
	l.fire("日本", "v", id(1))
	want := []string{"byte:\xa9té", "té"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

// A callback may unsubscribe itself (or another listener) while an event is
// being delivered: every other matching listener still gets the event
// exactly once. Regression: unsubscribing the last listener of a prefix
// deleted it from the prefix list in place, which shifted the list being
// iterated, so the next prefix was skipped (or the "" listeners called
// twice).
func TestListenerUnsubscribeDuringFire(t *testing.T) {
	tests := []struct {
		name string
		// cancel lists, by subscription index, the listeners that the
		// listener of index 0 cancels when it is called.
		prefixes []string
		cancel   []int
		want     [4]int
	}{
		{name: "self on the empty prefix", prefixes: []string{"", "a", "ab", "abc"}, cancel: []int{0}, want: [4]int{1, 1, 1, 1}},
		{name: "another prefix", prefixes: []string{"", "a", "ab", "abc"}, cancel: []int{1}, want: [4]int{1, 0, 1, 1}},
		{name: "self and the rest", prefixes: []string{"", "a", "ab", "abc"}, cancel: []int{0, 1, 2, 3}, want: [4]int{1, 0, 0, 0}},
		{name: "same prefix", prefixes: []string{"a", "a", "ab", "abc"}, cancel: []int{0, 1}, want: [4]int{1, 0, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListeners()
			var counts [4]int
			cancels := make([]func(), 4)
			for i, p := range tt.prefixes {
				cancels[i] = l.subscribe(p, func(KeyChange) {
					counts[i]++
					if i == 0 {
						for _, c := range tt.cancel {
							cancels[c]()
						}
					}
				})
			}
			l.fire("abcd", "v", id(1))
			if counts != tt.want {
				t.Errorf("counts = %v, want %v", counts, tt.want)
			}
			counts = [4]int{}
			l.fire("abcd", "v", id(1))
			for _, c := range tt.cancel {
				if counts[c] != 0 {
					t.Errorf("listener %d called after it was cancelled", c)
				}
			}
		})
	}
}

// A callback that subscribes during delivery does not disturb it.
func TestListenerSubscribeDuringFire(t *testing.T) {
	l := newListeners()
	var counts [3]int
	l.subscribe("a", func(KeyChange) {
		counts[0]++
		l.subscribe("", func(KeyChange) { counts[2]++ })
	})
	l.subscribe("ab", func(KeyChange) { counts[1]++ })
	l.fire("abc", "v", id(1))
	if counts[0] != 1 || counts[1] != 1 {
		t.Errorf("counts = %v, want the two existing listeners called once each", counts)
	}
}

// A nil registry (NodeState copies) fires nothing.
func TestNilListeners(t *testing.T) {
	var l *listeners
	l.fire("k", "v", id(1))
}
