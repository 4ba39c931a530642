package chitchat_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

func secAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i))
}

func secConfig(i int, mutate func(*chitchat.Config)) chitchat.Config {
	c := chitchat.Config{
		ID:             chitchat.NodeID{Name: fmt.Sprintf("node_%d", i), Addr: secAddr(i)},
		ClusterID:      "sec",
		GossipInterval: 100 * time.Millisecond,
		Seeds:          []string{secAddr(0).String()},
		RandSeed:       uint64(i + 1),
	}
	c.FailureDetector.InitialInterval = 100 * time.Millisecond
	c.FailureDetector.DeadNodeGracePeriod = 20 * time.Second
	if mutate != nil {
		mutate(&c)
	}
	return c
}

func spawnSec(t *testing.T, net transport.Transport, i int, mutate func(*chitchat.Config)) *chitchat.Server {
	t.Helper()
	s, err := chitchat.Spawn(t.Context(), secConfig(i, mutate), net)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// waitLive blocks (in virtual time) until s sees exactly n live nodes.
func waitLive(t *testing.T, s *chitchat.Server, n int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	for nodes := range s.WatchLiveNodes(ctx) {
		if len(nodes) == n {
			return time.Since(start)
		}
	}
	t.Fatalf("%v: not %d live nodes within %v: %v", s.Self().Name, n, limit, s.LiveNodeIDs())
	return 0
}

func newNet(t *testing.T) *transport.Network {
	t.Helper()
	net, err := transport.NewNetwork(transport.NetworkConfig{MTU: chitchat.MaxDatagramSize, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestLeaveIsReportedAtOnceAndCollected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		var srvs []*chitchat.Server
		for i := range 4 {
			srvs = append(srvs, spawnSec(t, net, i, nil))
		}
		for _, s := range srvs {
			waitLive(t, s, 4, 10*time.Second)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := srvs[3].Leave(ctx); err != nil {
			t.Fatalf("Leave: %v", err)
		}
		t.Logf("leave acknowledged after %v", time.Since(start))
		if d := time.Since(start); d > time.Second {
			t.Errorf("leave took %v, want at most 1s (a few exchanges)", d)
		}
		srvs[3].Shutdown()
		leaver := srvs[3].Self()
		// Every survivor learns it within a few rounds and reports it left,
		// never dead, long before the failure detector would.
		waitLive(t, srvs[1], 3, 2*time.Second)
		for _, s := range srvs[:3] {
			snap := s.Snapshot()
			if !slices.Contains(snap.Left, leaver) || slices.Contains(snap.Dead, leaver) || slices.Contains(snap.Live, leaver) {
				t.Errorf("%s: left=%v dead=%v live=%v; want %s left only", s.Self().Name, snap.Left, snap.Dead, snap.Live, leaver.Name)
			}
		}
		time.Sleep(21 * time.Second) // virtual: past the dead-node grace period
		for _, s := range srvs[:3] {
			if _, ok := s.NodeState(leaver); ok {
				t.Errorf("%s still holds the left node after the grace period", s.Self().Name)
			}
			if st := s.Stats(); st.DeadNodes != 0 {
				t.Errorf("%s: %d dead nodes, want 0", s.Self().Name, st.DeadNodes)
			}
		}
	})
}

// A node that leaves before it sees any peer live still tells one.
func TestLeaveBeforePeersAreLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		a := spawnSec(t, net, 0, nil)
		b := spawnSec(t, net, 1, nil)
		synctest.Wait() // first round: they know each other, neither is live yet
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := b.Leave(ctx); err != nil {
			t.Fatalf("Leave: %v", err)
		}
		if snap := a.Snapshot(); !slices.Contains(snap.Left, b.Self()) {
			t.Errorf("node_0 does not report node_1 left: left=%v live=%v dead=%v", snap.Left, snap.Live, snap.Dead)
		}
	})
}

func TestLeaveAloneReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := spawnSec(t, newNet(t), 0, nil)
		if err := s.Leave(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func mustKey(t *testing.T, b byte) chitchat.Key {
	var k chitchat.Key
	for i := range k {
		k[i] = b ^ byte(i*7)
	}
	return k
}

func withRing(ring *chitchat.Keyring) func(*chitchat.Config) {
	return func(c *chitchat.Config) { c.Keyring = ring }
}

func TestEncryptedClusterRejectsOutsiders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		k1 := mustKey(t, 1)
		ring := func() *chitchat.Keyring { r, _ := chitchat.NewKeyring(k1); return r }
		a := spawnSec(t, net, 0, withRing(ring()))
		b := spawnSec(t, net, 1, withRing(ring()))
		waitLive(t, a, 2, 5*time.Second)

		other, _ := chitchat.NewKeyring(mustKey(t, 2))
		spawnSec(t, net, 2, withRing(other))                                                        // wrong key
		spawnSec(t, net, 3, nil)                                                                    // no key
		spawnSec(t, net, 4, func(c *chitchat.Config) { c.ClusterID = "other"; c.Keyring = ring() }) // wrong cluster
		time.Sleep(3 * time.Second)
		if live := a.LiveNodeIDs(); len(live) != 2 {
			t.Errorf("live = %v, want the two keyed nodes only", live)
		}
		st := a.Stats()
		if st.AuthFailures == 0 || st.PlaintextRefused == 0 || st.WrongCluster == 0 {
			t.Errorf("stats %+v: want auth failures, refused plaintext and wrong-cluster datagrams counted", st)
		}
		if _, ok := a.NodeState(chitchat.NodeID{Name: "node_3", Addr: secAddr(3)}); ok {
			t.Error("a plaintext node got into the encrypted cluster")
		}
		_ = b
	})
}

// A captured Syn replayed from a spoofed source: the first copy is
// processed but answered at the sender's authenticated address, never at
// the source (no reflection); the second is refused as a replay. (A
// datagram sealed for one node does not open at another at all:
// TestSealBindsTheRecipient.)
func TestReplayedDatagramIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		ring, _ := chitchat.NewKeyring(mustKey(t, 1))
		a := spawnSec(t, net, 0, withRing(ring))
		// A capture point: a raw endpoint node 1 gossips to as a seed.
		raw, err := net.Open(secAddr(9))
		if err != nil {
			t.Fatal(err)
		}
		b := spawnSec(t, net, 1, func(c *chitchat.Config) { c.Keyring = ring; c.Seeds = []string{secAddr(9).String()} })
		buf := make([]byte, transport.MaxPayloadSize)
		n, _, err := raw.Recv(buf)
		if err != nil {
			t.Fatal(err)
		}
		captured := append([]byte(nil), buf[:n]...)
		fromA := make(chan struct{}, 16)
		go func() {
			for {
				_, from, err := raw.Recv(buf)
				if err != nil {
					return
				}
				if from == a.LocalAddr() {
					fromA <- struct{}{}
				}
			}
		}()
		for range 2 {
			if err := raw.Send(a.LocalAddr(), captured); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		st := a.Stats()
		if st.Replays != 1 {
			t.Errorf("Replays = %d, want 1 (first copy accepted, second refused)", st.Replays)
		}
		select {
		case <-fromA:
			t.Error("a answered the spoofed source of a replayed datagram")
		default:
		}
		raw.Close()
		_ = b
	})
}

func TestKeyRotationKeepsClusterConverged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		k1, k2 := mustKey(t, 1), mustKey(t, 2)
		var rings []*chitchat.Keyring
		var srvs []*chitchat.Server
		for i := range 4 {
			r, _ := chitchat.NewKeyring(k1)
			rings = append(rings, r)
			srvs = append(srvs, spawnSec(t, net, i, withRing(r)))
		}
		waitLive(t, srvs[0], 4, 10*time.Second)
		step := func(name string, f func(r *chitchat.Keyring) error) {
			t.Helper()
			for i, r := range rings {
				if err := f(r); err != nil {
					t.Fatalf("%s on node %d: %v", name, i, err)
				}
				time.Sleep(150 * time.Millisecond) // nodes switch one at a time
			}
			time.Sleep(time.Second)
			for _, s := range srvs {
				if st := s.Stats(); st.DeadNodes != 0 || st.LiveNodes != 4 {
					t.Fatalf("after %s: %s sees %d live, %d dead", name, s.Self().Name, st.LiveNodes, st.DeadNodes)
				}
			}
		}
		step("add new key", func(r *chitchat.Keyring) error { return r.AddKey(k2) })
		step("use new key", func(r *chitchat.Keyring) error { return r.UseKey(k2) })
		step("remove old key", func(r *chitchat.Keyring) error { return r.RemoveKey(k1) })
		for _, s := range srvs {
			if st := s.Stats(); st.AuthFailures != 0 {
				t.Errorf("%s: %d authentication failures during the rotation", s.Self().Name, st.AuthFailures)
			}
		}
	})
}

func TestMigrationToEncryption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		ring, _ := chitchat.NewKeyring(mustKey(t, 1))
		plain := spawnSec(t, net, 0, nil)
		// A node that sends encrypted but still accepts plaintext talks with
		// a node that has no key yet only if it also sends plaintext.
		mig := spawnSec(t, net, 1, func(c *chitchat.Config) { c.Keyring = ring; c.AcceptPlaintext = true; c.SendPlaintext = true })
		waitLive(t, plain, 2, 5*time.Second)
		waitLive(t, mig, 2, 5*time.Second)
	})
}

func TestLimitsBoundAFloodOfInventedNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		a := spawnSec(t, net, 0, func(c *chitchat.Config) { c.Limits.MaxNodes = 50 })
		raw, _ := net.Open(secAddr(9))
		defer raw.Close()
		flood := func(batch int, nd chitchat.NodeDigest) {
			var d chitchat.Digest
			for i := range 100 {
				d = append(d, chitchat.DigestEntry{
					ID:         chitchat.NodeID{Name: fmt.Sprintf("invented-%05d", batch*100+i), Addr: secAddr(1000 + i)},
					NodeDigest: nd,
				})
			}
			raw.Send(a.LocalAddr(), chitchat.EncodeMessage(&chitchat.Syn{ClusterID: "sec", Digest: d}))
			synctest.Wait()
		}
		// Absurd versions are refused outright.
		flood(0, chitchat.NodeDigest{Heartbeat: 1, MaxVersion: 1 << 63})
		if st := a.Stats(); st.KnownNodes != 1 {
			t.Errorf("holds %d nodes after a digest of absurd versions, want 1 (self)", st.KnownNodes)
		}
		// Plausible invented ids are bounded by eviction.
		for batch := 1; batch <= 20; batch++ {
			flood(batch, chitchat.NodeDigest{Heartbeat: 1})
		}
		st := a.Stats()
		if st.KnownNodes > 50 {
			t.Errorf("holds %d nodes, limit 50", st.KnownNodes)
		}
		if st.Engine.NodesEvicted == 0 {
			t.Errorf("no eviction counted: %+v", st.Engine)
		}
		// An honest node still gets in, becomes live and stays.
		b := spawnSec(t, net, 1, nil)
		waitLive(t, a, 2, 5*time.Second)
		_ = b
	})
}

// A node restarted with the same NodeID (Generation left at 0, say) used to
// lose its new writes: peers held the old incarnation at higher versions
// and dropped the new ones. Now the peers' claims about it are above what
// it produced: it refutes them (docs/design/scale.md §6) and its new state
// replaces the old one everywhere.
func TestRestartWithTheSameGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		a := spawnSec(t, net, 0, nil)
		b := spawnSec(t, net, 1, nil)
		for k := range 5 {
			if err := b.Set(fmt.Sprintf("old%d", k), "x"); err != nil {
				t.Fatal(err)
			}
		}
		waitLive(t, a, 2, 10*time.Second)
		time.Sleep(time.Second)
		id := b.Self()
		b.Shutdown()
		b2 := spawnSec(t, net, 1, nil) // the same ID, generation 0
		if b2.Self() != id {
			t.Fatalf("restarted as %v, want %v", b2.Self(), id)
		}
		if err := b2.Set("new", "y"); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			ns, ok := a.NodeState(id)
			if ok {
				if v, _ := ns.Get("new"); v == "y" {
					if _, stale := ns.Get("old0"); !stale {
						t.Logf("a has the new incarnation's state, without the old keys (refutations: %d)", b2.Stats().Engine.Refutations)
						return
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		ns, _ := a.NodeState(id)
		t.Fatalf("after 10 s a still holds %v for the restarted node", kvsOf(ns))
	})
}

func kvsOf(ns *chitchat.NodeState) map[string]string {
	m := map[string]string{}
	if ns == nil {
		return m
	}
	for k, v := range ns.KeyValues() {
		m[k] = v.Value
	}
	return m
}
