package chitchat_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// holdsAll reports whether s holds every key of every writer, at its value.
func holdsAll(s *chitchat.Server, writers []*chitchat.Server, keys int) bool {
	snap := s.Snapshot()
	for i, w := range writers {
		ns, ok := snap.Node(w.Self())
		if !ok {
			return false
		}
		for k := range keys {
			if v, ok := ns.Get(fmt.Sprintf("k%03d", k)); !ok || v != noise(i, k) {
				return false
			}
		}
	}
	return true
}

// noise returns 200 bytes that zstd cannot shrink, for writer i's key k.
func noise(i, k int) string {
	r := rand.New(rand.NewPCG(uint64(i), uint64(k)))
	b := make([]byte, 200)
	for j := range b {
		b[j] = 'a' + byte(r.IntN(26))
	}
	return string(b)
}

// A joining node whose cluster holds far more than a datagram gets it in
// one stream exchange with its seed, at its first round; without streams
// it takes many rounds of datagrams.
func TestJoiningNodeGetsTheClusterByStream(t *testing.T) {
	for _, tt := range []struct {
		name           string
		disableStreams bool
		within         time.Duration
	}{
		{"streams", false, 200 * time.Millisecond},
		{"datagrams only", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newNet(t)
				small := func(c *chitchat.Config) { c.MaxDatagramSize = 1400; c.DisableStreams = tt.disableStreams }
				var writers []*chitchat.Server
				for i := range 5 {
					s := spawnSec(t, net, i, small)
					for k := range 40 {
						if err := s.Set(fmt.Sprintf("k%03d", k), noise(i, k)); err != nil {
							t.Fatal(err)
						}
					}
					writers = append(writers, s)
				}
				waitLive(t, writers[0], 5, 10*time.Second)
				time.Sleep(3 * time.Second) // let the writers settle
				start := time.Now()
				joiner := spawnSec(t, net, 9, small)
				took := time.Duration(-1)
				for d := time.Duration(0); d < 30*time.Second; d += 10 * time.Millisecond {
					if holdsAll(joiner, writers, 40) {
						took = time.Since(start)
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				t.Logf("%s: the joiner holds the 40 KB of state after %v (virtual); streams %+v", tt.name, took, joiner.Stats().Streams)
				if tt.disableStreams {
					if took >= 0 && took < time.Second {
						t.Errorf("without streams the joiner had everything after %v: the state is too small to need them", took)
					}
					return
				}
				if took < 0 || took > tt.within {
					t.Errorf("with streams the joiner had everything after %v, want within %v", took, tt.within)
				}
				if st := joiner.Stats().Streams; st.Started == 0 || st.Failed != 0 {
					t.Errorf("stream stats %+v: want one started, none failed", st)
				}
			})
		})
	}
}

// Join contacts the given addresses at once and counts who answered.
func TestJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		noSeeds := func(c *chitchat.Config) { c.Seeds = nil }
		a := spawnSec(t, net, 0, noSeeds)
		b := spawnSec(t, net, 1, noSeeds)
		c := spawnSec(t, net, 2, noSeeds)
		n, err := c.Join(context.Background(), []string{a.Self().Addr.String(), b.Self().Addr.String(), "127.0.0.1:1"})
		if n != 2 || err != nil {
			t.Errorf("Join = %d, %v; want 2 and no error (one address is nobody)", n, err)
		}
		if _, ok := c.NodeState(a.Self()); !ok {
			t.Error("after Join, c does not know a")
		}
		if n, err := c.Join(context.Background(), []string{"127.0.0.1:1"}); n != 0 || err == nil {
			t.Errorf("Join(nobody) = %d, %v; want 0 and an error", n, err)
		}
		if n, err := c.Join(context.Background(), []string{"no port"}); n != 0 || err == nil || !strings.Contains(err.Error(), "host:port") {
			t.Errorf("Join(bad address) = %d, %v; want an error that says host:port", n, err)
		}
		c.Shutdown()
		if _, err := c.Join(context.Background(), []string{a.Self().Addr.String()}); err != chitchat.ErrClosed {
			t.Errorf("Join after Shutdown: %v, want ErrClosed", err)
		}
	})
}

// Stream exchanges are sealed like datagrams: a cluster with a keyring
// joins by stream, and a node with another key gets nothing.
func TestStreamsAreSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		ring, _ := chitchat.NewKeyring(mustKey(t, 1))
		other, _ := chitchat.NewKeyring(mustKey(t, 2))
		a := spawnSec(t, net, 0, func(c *chitchat.Config) { c.Keyring = ring; c.Seeds = nil })
		if err := a.Set("secret", "42"); err != nil {
			t.Fatal(err)
		}
		b := spawnSec(t, net, 1, func(c *chitchat.Config) { c.Keyring = ring; c.Seeds = nil })
		if n, err := b.Join(context.Background(), []string{a.Self().Addr.String()}); n != 1 {
			t.Fatalf("Join with the key = %d, %v", n, err)
		}
		if ns, ok := b.NodeState(a.Self()); !ok || ns.Heartbeat() == 0 {
			t.Fatal("the sealed stream exchange brought nothing")
		}
		waitFor := func(cond func() bool) {
			for range 100 {
				if cond() {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitFor(func() bool { v, _ := nodeGet(b, a.Self(), "secret"); return v == "42" })
		if v, _ := nodeGet(b, a.Self(), "secret"); v != "42" {
			t.Errorf("b's view of a's secret = %q", v)
		}
		c := spawnSec(t, net, 2, func(c *chitchat.Config) { c.Keyring = other; c.Seeds = nil })
		if n, err := c.Join(context.Background(), []string{a.Self().Addr.String()}); n != 0 || err == nil {
			t.Errorf("Join with another key = %d, %v; want refused", n, err)
		}
		if _, ok := c.NodeState(a.Self()); ok {
			t.Error("a node with another key learned of a by stream")
		}
	})
}

func nodeGet(s *chitchat.Server, id chitchat.NodeID, key string) (string, bool) {
	ns, ok := s.NodeState(id)
	if !ok {
		return "", false
	}
	return ns.Get(key)
}
