package chitchat_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// A graceful leave is pushed down the ring: every survivor's live-nodes
// watch drops the node at once, not at its next round (issue 14: "a
// graceful leave seen by every node within 100 ms"). The leaver's push was
// once applied, then not forwarded: once applied, the leave made its
// sender no member, and plaintext pushes from non-members are not
// forwarded; the survivors outside the first hop waited for gossip.
func TestLeaveIsSeenAtOnceByEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		const n = 10
		var ss []*chitchat.Server
		for i := range n {
			ss = append(ss, spawnSec(t, net, i, func(c *chitchat.Config) { c.GossipInterval = 300 * time.Millisecond }))
		}
		for _, s := range ss {
			waitLive(t, s, n, 20*time.Second)
		}
		leaver := ss[n-2].Self()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start time.Time
			seen  = map[string]time.Duration{}
		)
		for i, s := range ss {
			if i == n-2 {
				continue
			}
			wg.Go(func() {
				for nodes := range s.WatchLiveNodes(ctx) {
					gone := true
					for _, ns := range nodes {
						gone = gone && ns.ID() != leaver
					}
					mu.Lock()
					if gone && !start.IsZero() {
						seen[s.Self().Name] = time.Since(start)
						mu.Unlock()
						return
					}
					mu.Unlock()
				}
			})
		}
		synctest.Wait() // every watcher has its first value
		mu.Lock()
		start = time.Now()
		mu.Unlock()
		go ss[n-2].Leave(ctx)
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		if len(seen) != n-1 {
			t.Fatalf("%d of %d survivors dropped the leaver within 1s: %v", len(seen), n-1, seen)
		}
		for name, d := range seen {
			if d > 10*time.Millisecond {
				t.Errorf("%s dropped the leaver after %v (virtual), want at once", name, d)
			}
		}
	})
}
