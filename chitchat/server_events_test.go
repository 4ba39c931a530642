package chitchat

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEventQueue(t *testing.T) {
	ev := func(i int) KeyChange { return KeyChange{Key: fmt.Sprint(i)} }
	drain := func(q *eventQueue) []string {
		var got []string
		for e, ok := q.pop(); ok; e, ok = q.pop() {
			got = append(got, e.Key)
		}
		return got
	}
	t.Run("empty queue holds no buffer", func(t *testing.T) {
		q := newEventQueue(4096)
		if c := cap(q.pending); c != 0 {
			t.Errorf("cap = %d, want 0", c)
		}
	})
	t.Run("limit, then drop, in order", func(t *testing.T) {
		q := newEventQueue(3)
		var pushed []bool
		for i := range 5 {
			pushed = append(pushed, q.push(ev(i)))
		}
		if d := cmp.Diff([]bool{true, true, true, false, false}, pushed); d != "" {
			t.Errorf("push (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"0", "1", "2"}, drain(q)); d != "" {
			t.Errorf("pop (-want +got):\n%s", d)
		}
	})
	t.Run("pops free room for pushes", func(t *testing.T) {
		q := newEventQueue(2)
		q.push(ev(0))
		q.push(ev(1))
		q.pop()
		if !q.push(ev(2)) {
			t.Fatal("push refused with one event queued of 2")
		}
		if q.push(ev(3)) {
			t.Fatal("push accepted with 2 events queued of 2")
		}
		if d := cmp.Diff([]string{"1", "2"}, drain(q)); d != "" {
			t.Errorf("pop (-want +got):\n%s", d)
		}
	})
	t.Run("a drained burst releases its buffer", func(t *testing.T) {
		q := newEventQueue(4096)
		for i := range 1000 {
			q.push(ev(i))
		}
		if got := drain(q); len(got) != 1000 || got[999] != "999" {
			t.Fatalf("drained %d events, last %q", len(got), got[len(got)-1])
		}
		if c := cap(q.pending); c > eventQueueKeep {
			t.Errorf("cap after drain = %d, want at most %d", c, eventQueueKeep)
		}
	})
	t.Run("one token while events are queued", func(t *testing.T) {
		q := newEventQueue(10)
		q.push(ev(0))
		q.push(ev(1))
		if n := len(q.ready); n != 1 {
			t.Errorf("tokens = %d, want 1", n)
		}
	})
}

// A subscription costs a few hundred bytes until events arrive: it used to
// allocate a channel of Config.EventBuffer events (4,096 × 176 bytes).
func TestSubscribeAllocatesNoEventBuffer(t *testing.T) {
	srv, err := New(srvIntForTest(1), srvIntNetwork(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cancel := srv.Subscribe("k", func(KeyChange) {})
	runtime.ReadMemStats(&after)
	cancel()
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<10 {
		t.Errorf("Subscribe allocated %d bytes, want at most 16 KiB", got)
	}
}
