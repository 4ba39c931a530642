package chitchat_test

// Upstream server.rs tests that only need the public API:
// T85–T88, T90, T94. Each runs one Server (for_test config: gossip 50 ms,
// failure detector defaults) and raw peer sockets on the in-memory network
// (MTU 65,507) inside a synctest bubble. Upstream allows 100 ms for a reply;
// on the in-memory network, with no delay, a reply is in the inbox before
// the request's Send returns, so we assert it arrives at once (0 virtual
// time). T89, T91–T93 and T95 need unexported hooks: see
// server_internal_test.go.

import (
	"flag"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

func init() {
	// -seed replays a randomized server test (chitchattest.Seed reads it).
	// Registered here only if no other test file of the binary did.
	if flag.Lookup("seed") == nil {
		flag.Uint64("seed", 0, "seed of the randomized server tests (0: derived from the test name)")
	}
}

// replyTimeout is upstream's `timeout` for server.rs tests.
const replyTimeout = 100 * time.Millisecond

// forTestCluster is a cluster whose nodes use upstream's for_test config.
func forTestCluster(t *testing.T) *chitchattest.Cluster {
	return chitchattest.New(t, chitchattest.Options{Config: chitchattest.ForTestConfig})
}

// standaloneEngine is a Chitchat instance outside any server (upstream
// builds one with Chitchat::with_chitchat_id_and_seeds).
func standaloneEngine(t *testing.T, cfg chitchat.Config) *chitchat.Engine {
	t.Helper()
	e, err := chitchat.NewEngine(cfg, rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// T85 test_syn
func TestT85_Syn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		peer := c.OpenPeer(chitchattest.Addr(1111))
		srv := c.Node(c.AddNode("node-1112", 1112, chitchattest.WithSeeds()))

		start := time.Now()
		if err := srv.Gossip(peer.Addr()); err != nil {
			t.Fatal(err)
		}
		r, ok := peer.Next(replyTimeout)
		if !ok {
			t.Fatalf("no message within %v", replyTimeout)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Syn arrived after %v, want at once", d)
		}
		if r.From != srv.Self().Addr {
			t.Errorf("from = %v, want the server's address %v", r.From, srv.Self().Addr)
		}
		syn, ok := r.Msg.(*chitchat.Syn)
		if !ok {
			t.Fatalf("got %T (err %v), want *Syn", r.Msg, r.Err)
		}
		if syn.ClusterID != "default-cluster" {
			t.Errorf("cluster = %q, want default-cluster", syn.ClusterID)
		}
		if len(syn.Digest) != 1 || syn.Digest[0].ID != srv.Self() {
			t.Errorf("digest = %+v, want exactly the server's own entry", syn.Digest)
		}
	})
}

// T86 test_syn_ack
func TestT86_SynAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		peer := c.OpenPeer(chitchattest.Addr(2))
		srv := c.Node(c.AddNode("node-1", 1, chitchattest.WithSeeds()))

		other := standaloneEngine(t, chitchattest.ForTest(2))
		start := time.Now()
		peer.Send(srv.Self().Addr, other.CreateSyn(start))
		r, ok := peer.Next(replyTimeout)
		if !ok {
			t.Fatalf("no reply within %v", replyTimeout)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("SynAck arrived after %v, want at once", d)
		}
		if r.From != srv.Self().Addr {
			t.Errorf("from = %v, want %v", r.From, srv.Self().Addr)
		}
		if _, ok := r.Msg.(*chitchat.SynAck); !ok {
			t.Fatalf("got %T (err %v), want *SynAck", r.Msg, r.Err)
		}
	})
}

// T87 test_syn_bad_cluster
func TestT87_SynBadCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		peer := c.OpenPeer(chitchattest.Addr(2224))
		srv := c.Node(c.AddNode("node-2223", 2223, chitchattest.WithSeeds()))

		cfg := chitchattest.ForTest(2224)
		cfg.ClusterID = "another-cluster"
		outsider := standaloneEngine(t, cfg)
		start := time.Now()
		peer.Send(srv.Self().Addr, outsider.CreateSyn(start))
		r, ok := peer.Next(replyTimeout)
		if !ok {
			t.Fatalf("no reply within %v", replyTimeout)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("BadCluster arrived after %v, want at once", d)
		}
		if _, ok := r.Msg.(*chitchat.BadCluster); !ok {
			t.Fatalf("got %T (err %v), want *BadCluster", r.Msg, r.Err)
		}
		if got := srv.Stats().Engine.BadClusterSent; got != 1 {
			t.Errorf("BadClusterSent = %d, want 1", got)
		}
		if _, known := srv.NodeState(outsider.Self()); known {
			t.Errorf("the server learned %v from a Syn of another cluster", outsider.Self())
		}
	})
}

// T88 test_seeding: the first round runs at spawn and, with no live peer,
// always gossips with a seed.
func TestT88_Seeding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		peer := c.OpenPeer(chitchattest.Addr(5551))
		start := time.Now()
		client := c.Node(c.AddNode("node-5552", 5552, chitchattest.WithSeeds(peer.Addr().String())))

		r, ok := peer.Next(replyTimeout)
		if !ok {
			t.Fatalf("no Syn within %v of spawn", replyTimeout)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("first Syn after %v, want at spawn", d)
		}
		if r.From != client.Self().Addr {
			t.Errorf("from = %v, want %v", r.From, client.Self().Addr)
		}
		if _, ok := r.Msg.(*chitchat.Syn); !ok {
			t.Fatalf("got %T (err %v), want *Syn", r.Msg, r.Err)
		}
	})
}

// T90 test_member_change_event_is_broadcasted
func TestT90_MemberChangeEventIsBroadcasted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		c := forTestCluster(t)
		n1 := c.AddNode("node-6663", 6663, chitchattest.WithSeeds())
		w := c.Watch(n1)

		// Skip the empty maps published before the first round.
		start := time.Now()
		var live []*chitchat.NodeState
		for len(live) == 0 {
			v, ok := w.Next(timeout - time.Since(start))
			if !ok {
				t.Fatalf("no non-empty live nodes within %v", timeout)
			}
			live = v
		}
		if !chitchattest.SameIDs(live, c.ID(n1)) {
			t.Fatalf("first value = %v, want {node-6663}", chitchattest.NodeIDs(live))
		}

		n2 := c.AddNode("node-6664", 6664, chitchattest.WithSeeds(c.ID(n1).Addr.String()))
		start = time.Now()
		live, ok := w.Next(timeout)
		if !ok {
			t.Fatalf("no new value within %v of node-6664's start", timeout)
		}
		if !chitchattest.SameIDs(live, c.ID(n1), c.ID(n2)) {
			t.Errorf("next value = %v, want {node-6663, node-6664}", chitchattest.NodeIDs(live))
		}
		t.Logf("node-6664 published after %v (virtual)", time.Since(start))
	})
}

// T94 test_graceful_shutdown
func TestT94_GracefulShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := forTestCluster(t)
		srv := c.Node(c.AddNode("node-1", 1))
		time.Sleep(time.Second) // a few rounds

		if err := srv.Shutdown(); err != nil {
			t.Fatalf("Shutdown() = %v, want nil", err)
		}
		select {
		case <-srv.Done():
		default:
			t.Fatal("Done() not closed after Shutdown returned")
		}
		if err := srv.Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
		if err := srv.Shutdown(); err != nil {
			t.Errorf("second Shutdown() = %v, want nil", err)
		}
	})
}
