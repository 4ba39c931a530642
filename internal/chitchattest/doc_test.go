package chitchattest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

// The package documentation's example: it needs a *testing.T, so it is a
// test rather than an Example (internal/doccheck accepts TestDoc functions).
func TestDocUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chitchattest.New(t, chitchattest.Options{})
		a := c.AddNode("node-1", 1)
		b := c.AddNode("node-2", 2) // seeded with node-1
		c.MustWaitLive(time.Minute, b, c.ID(a), c.ID(b))
		c.Node(a).Set("k", "v")
		c.EventuallyNodeState(b, c.ID(a), chitchattest.EqualKeyValue("k", "v"), time.Second)
	})
}
