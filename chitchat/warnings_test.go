package chitchat_test

import (
	"log/slog"
	"math/bits"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Misconfiguration leaves a trace (issue 16, item 7): a seed that does not
// resolve, a peer sealing with a wrong key and a peer sending plaintext to
// an encrypted node are each warned about, rate limited: at the 1st, 2nd,
// 4th, 8th... occurrence of a refused datagram, once per DNS refresh for a
// seed. (A node alone for a minute: TestAloneIsWarned.)
func TestMisconfigurationIsWarned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		var logs syncBuffer
		ring, _ := chitchat.NewKeyring(mustKey(t, 1))
		a := spawnSec(t, net, 0, func(c *chitchat.Config) {
			c.Keyring = ring
			c.Resolver = &fakeResolver{} // knows no host
			c.Seeds = []string{"nowhere.invalid:7000"}
			c.DNSRefreshInterval = 10 * time.Second
			c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		})
		wrong, _ := chitchat.NewKeyring(mustKey(t, 2))
		spawnSec(t, net, 1, withRing(wrong)) // seeds node 0 with a wrong key
		spawnSec(t, net, 2, nil)             // seeds node 0 in plaintext
		time.Sleep(35 * time.Second)         // virtual: start and 3 refreshes
		st := a.Stats()
		out := logs.String()
		for _, c := range []struct {
			name, msg string
			min, max  int
		}{
			{"unresolvable seed", `msg="failed to lookup host"`, 4, 4},
			{"wrong key", `msg="encrypted datagram dropped"`, 1, bits.Len64(st.AuthFailures)},
			{"plaintext", `msg="unencrypted datagram refused`, 1, bits.Len64(st.PlaintextRefused)},
		} {
			if n := strings.Count(out, c.msg); n < c.min || n > c.max {
				t.Errorf("%s: %d warnings %q, want %d to %d (stats %+v):\n%s", c.name, n, c.msg, c.min, c.max, st, out)
			}
		}
		if st.AuthFailures < 8 || st.PlaintextRefused < 8 {
			t.Errorf("stats %+v: want at least 8 datagrams of each kind refused, to see the rate limit", st)
		}
	})
}
