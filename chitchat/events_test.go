package chitchat_test

import (
	"context"
	"fmt"
	"iter"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// collect reads events from s in the background until stop is closed.
func collect(t *testing.T, s *chitchat.Server) (events func() []string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan []string, 1)
	started := make(chan struct{})
	go func() {
		var got []string
		close(started)
		for ev := range s.Events(ctx) {
			got = append(got, fmt.Sprintf("%v %s", ev.Kind, ev.ID.Name))
		}
		out <- got
	}()
	<-started
	var result []string
	return func() []string { return result }, func() { cancel(); result = <-out }
}

// Joined, Updated, Left and Died, in order, as a serf user expects.
func TestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		a := spawnSec(t, net, 0, nil)
		events, stop := collect(t, a)
		b := spawnSec(t, net, 1, nil)
		c := spawnSec(t, net, 2, nil)
		waitLive(t, a, 3, 10*time.Second)
		time.Sleep(time.Second)
		if err := b.Set("role", "indexer"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := b.Leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		b.Shutdown()
		time.Sleep(time.Second)
		c.Shutdown() // killed: found dead
		time.Sleep(10 * time.Second)
		stop()
		got := events()
		want := []string{"Joined node_1", "Joined node_2", "Updated node_1", "Left node_1", "Died node_2"}
		// Joins may come in either order, and a join may be followed by an
		// update as the joiner's first keys arrive: compare the sequence of
		// each node.
		per := func(evs []string, name string) (out []string) {
			for _, e := range evs {
				if len(e) > len(name) && e[len(e)-len(name):] == name {
					out = append(out, e)
				}
			}
			return out
		}
		for _, name := range []string{"node_1", "node_2"} {
			g, w := per(got, name), per(want, name)
			if fmt.Sprint(dedupUpdates(g)) != fmt.Sprint(w) {
				t.Errorf("events of %s = %v, want %v (all: %v)", name, g, w, got)
			}
		}
	})
}

// dedupUpdates folds runs of Updated into one.
func dedupUpdates(evs []string) []string {
	var out []string
	for _, e := range evs {
		if len(out) > 0 && out[len(out)-1] == e && e[:7] == "Updated" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// A consumer that does not read for a long time misses no outcome: it gets
// the membership as it is now, not an unbounded queue.
func TestEventsSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		a := spawnSec(t, net, 0, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		next, stopIter := iterPull(a.Events(ctx))
		defer stopIter()
		b := spawnSec(t, net, 1, nil)
		waitLive(t, a, 2, 10*time.Second)
		// 2,000 writes on b while nobody reads a's events.
		for k := range 2000 {
			b.Set("k", fmt.Sprint(k))
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		var last chitchat.Event
		for {
			ev, ok := next()
			if !ok {
				t.Fatal("the event stream ended")
			}
			last = ev
			if ev.Node != nil {
				if v, _ := ev.Node.Get("k"); v == "1999" {
					break
				}
			}
		}
		if last.ID != b.Self() {
			t.Errorf("last event about %v, want b", last.ID)
		}
	})
}

func iterPull(seq func(func(chitchat.Event) bool)) (func() (chitchat.Event, bool), func()) {
	return iter.Pull(seq)
}
