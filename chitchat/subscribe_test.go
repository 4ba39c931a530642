package chitchat_test

// Server.Subscribe: key changes are delivered asynchronously, in order, with
// the prefix stripped, on a goroutine per subscription; a full buffer drops
// and counts. synctest.Wait lets the dispatcher drain before each check.

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

// addrComparer lets go-cmp compare NodeIDs (netip.AddrPort has unexported
// fields).
var addrComparer = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

// eventLog collects the events of a subscription.
type eventLog struct {
	mu     sync.Mutex
	events []chitchat.KeyChange
}

func (l *eventLog) add(ev chitchat.KeyChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) get() []chitchat.KeyChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]chitchat.KeyChange(nil), l.events...)
}

func TestServerSubscribeOrderedAndPrefixStripped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		a := c.AddNode("node-1", 1)
		b := c.AddNode("node-2", 2)
		srv := c.Node(a)
		var log eventLog
		cancel := srv.Subscribe("app:", log.add)
		defer cancel()

		var want []chitchat.KeyChange
		for i := range 100 {
			k, v := fmt.Sprintf("k%03d", i), fmt.Sprint(i)
			if err := srv.Set("app:"+k, v); err != nil {
				t.Fatal(err)
			}
			want = append(want, chitchat.KeyChange{Key: k, Value: v, Node: c.ID(a)})
		}
		if err := srv.Set("other:k", "ignored"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if diff := cmp.Diff(want, log.get(), addrComparer); diff != "" {
			t.Fatalf("local events mismatch (-want +got):\n%s", diff)
		}

		// A peer's key, once gossiped, is delivered with the peer as Node.
		if err := c.Node(b).Set("app:remote", "r"); err != nil {
			t.Fatal(err)
		}
		want = append(want, chitchat.KeyChange{Key: "remote", Value: "r", Node: c.ID(b)})
		d := chitchattest.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return len(log.get()) == len(want) })
		t.Logf("remote key delivered after %v (virtual)", d)
		if diff := cmp.Diff(want, log.get(), addrComparer); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
		if got := srv.Stats().EventsDropped; got != 0 {
			t.Errorf("EventsDropped = %d, want 0", got)
		}
	})
}

func TestServerUnsubscribeStopsDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		srv := c.Node(c.AddNode("node-1", 1))
		var log eventLog
		cancel := srv.Subscribe("", log.add)
		if err := srv.Set("a", "1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		cancel()
		cancel() // harmless
		if err := srv.Set("b", "2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := []chitchat.KeyChange{{Key: "a", Value: "1", Node: srv.Self()}}
		if diff := cmp.Diff(want, log.get(), addrComparer); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestServerSubscribeCallbackMayCallServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		srv := c.Node(c.AddNode("node-1", 1))
		var log eventLog
		srv.Subscribe("in:", func(ev chitchat.KeyChange) {
			// Reads and writes from the callback: must not deadlock.
			v, _ := srv.Get("in:" + ev.Key)
			_ = srv.LiveNodes()
			_ = srv.Stats()
			if err := srv.Set("out:"+ev.Key, v+"!"); err != nil {
				t.Error(err)
			}
		})
		srv.Subscribe("out:", log.add)
		for i := range 10 {
			if err := srv.Set(fmt.Sprintf("in:%d", i), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		var want []chitchat.KeyChange
		for i := range 10 {
			want = append(want, chitchat.KeyChange{Key: fmt.Sprint(i), Value: fmt.Sprint(i) + "!", Node: srv.Self()})
		}
		if diff := cmp.Diff(want, log.get(), addrComparer); diff != "" {
			t.Errorf("events written from a callback mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestServerSubscribeOverflowIsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const buffer = 4
		c := forTestCluster(t)
		srv := c.Node(c.AddNode("node-1", 1, chitchattest.WithConfig(func(cfg *chitchat.Config) {
			cfg.EventBuffer = buffer
		})))
		release := make(chan struct{})
		var log eventLog
		srv.Subscribe("", func(ev chitchat.KeyChange) {
			<-release
			log.add(ev)
		})
		set := func(i int) {
			if err := srv.Set(fmt.Sprintf("k%d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
		set(0)
		synctest.Wait() // the callback holds event 0
		for i := 1; i < 10; i++ {
			set(i)
		}
		// Events 1..4 wait in the buffer; 5..9 are dropped.
		if got, want := srv.Stats().EventsDropped, uint64(10-1-buffer); got != want {
			t.Errorf("EventsDropped = %d, want %d", got, want)
		}
		close(release)
		synctest.Wait()
		var keys []string
		for _, ev := range log.get() {
			keys = append(keys, ev.Key)
		}
		if diff := cmp.Diff([]string{"k0", "k1", "k2", "k3", "k4"}, keys); diff != "" {
			t.Errorf("delivered keys mismatch (-want +got):\n%s", diff)
		}
	})
}
