// Package chitchattest runs chitchat Servers on an in-memory
// transport.Network, for server-level tests.
//
// It must only be used inside testing/synctest.Test. Every wait it offers
// (Eventually, Cluster.WaitLive, Watcher.Next, Peer.Next) is a
// time.Sleep, a timer or a context deadline inside the bubble, so it
// advances the bubble's virtual clock and costs no wall-clock time: the
// package never waits on the wall clock. Create the Cluster inside the
// bubble that uses it, since the network's inboxes and the servers' timers
// belong to the bubble that created them.
//
// A Cluster owns one test seed (Seed): the network's drop and jitter
// generator and every node's Config.RandSeed are derived from it, so a
// failing run can be replayed with -seed (where the test binary registers
// that flag).
//
// Typical use:
//
//	synctest.Test(t, func(t *testing.T) {
//		c := chitchattest.New(t, chitchattest.Options{})
//		a := c.AddNode("node-1", 1)
//		b := c.AddNode("node-2", 2) // seeded with node-1
//		c.MustWaitLive(time.Minute, b, c.ID(a), c.ID(b))
//		c.Node(a).Set("k", "v")
//		c.EventuallyNodeState(b, c.ID(a), chitchattest.EqualKeyValue("k", "v"), time.Second)
//	})
package chitchattest
