package chitchat_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Nodes that all start at the same instant, with one seed, all see all
// live after one or two rounds (one in about 3 runs of 4 here; on UDP, where
// starts are spread over milliseconds, 50 nodes take one round): each
// gets the seed's live nodes in the welcome that follows its stream
// exchange, the seed forwards every joiner's announcement down the ring,
// and a node whose view a digest shows to lag starts a stream at once
// (at most immediateStreams per interval). Without push (so without
// welcomes and announcements) it takes rounds, as upstream.
func TestColdStartIsLiveWithinTwoRounds(t *testing.T) {
	const n, interval = 30, 300 * time.Millisecond
	for _, tt := range []struct {
		name        string
		disablePush bool
		atMost      time.Duration
		atLeast     time.Duration
	}{
		{"push", false, 2 * interval, 0},
		{"no push", true, 10 * interval, 2 * interval},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newNet(t)
				start := time.Now()
				var srvs []*chitchat.Server
				for i := range n {
					srvs = append(srvs, spawnSec(t, net, i, func(c *chitchat.Config) {
						c.GossipInterval = interval
						c.FailureDetector.InitialInterval = interval
						c.DisablePush = tt.disablePush
						if i == 0 {
							c.Seeds = nil
						}
					}))
				}
				var took time.Duration
				for _, s := range srvs {
					waitLive(t, s, n, 20*time.Second)
				}
				took = time.Since(start)
				t.Logf("%s: %d nodes started at once all see all live after %v (virtual)", tt.name, n, took)
				if took > tt.atMost || took < tt.atLeast {
					t.Errorf("%s: all live after %v, want within [%v, %v]", tt.name, took, tt.atLeast, tt.atMost)
				}
			})
		})
	}
}

// The answer to a stream Syn is followed by a welcome: alive notices of
// the answerer and of every node it holds live, which the initiator takes
// as evidence of life (it dialled the answerer). Nodes the answerer holds
// dead are not in it.
func TestStreamWelcomeIsEvidenceOfLife(t *testing.T) {
	now := time.Unix(1_000, 0)
	cfg := func(name string, port uint16) chitchat.Config {
		c := chitchat.Config{
			ID:             chitchat.NodeID{Name: name, Generation: 1, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
			ClusterID:      "welcome",
			GossipInterval: time.Second,
		}
		c.FailureDetector.InitialInterval = time.Second
		return c
	}
	engine := func(c chitchat.Config) *chitchat.Engine {
		seed := uint64(c.ID.Addr.Port())
		e, err := chitchat.NewEngine(c, rand.New(rand.NewPCG(seed, seed)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	seed := engine(cfg("seed", 7000))
	// a and b meet the seed directly; c does too, then falls silent and
	// is judged dead.
	var peers []*chitchat.Engine
	for i, name := range []string{"a", "b", "c"} {
		p := engine(cfg(name, uint16(7001+i)))
		peers = append(peers, p)
		syn := p.CreateSyn(now)
		seed.Step(now, chitchat.Inbound{From: p.Self().Addr}, syn)
	}
	later := now.Add(time.Minute)
	for _, p := range peers[:2] {
		for s := now; !s.After(later); s = s.Add(time.Second) {
			p.Tick(s)
			seed.Step(s, chitchat.Inbound{From: p.Self().Addr}, p.CreateSyn(s))
		}
	}
	seed.UpdateLiveness(later)
	if got := len(seed.LiveNodes()); got != 3 {
		t.Fatalf("the seed holds %d nodes live (%v), want itself, a and b", got, seed.LiveNodes())
	}

	joiner := engine(cfg("joiner", 7009))
	in := chitchat.Inbound{From: joiner.Self().Addr, Stream: true}
	out := seed.Step(later, in, joiner.CreateStreamSyn(later))
	if out.Reply == nil || out.Welcome == nil {
		t.Fatalf("the seed answered a stream Syn with %v and welcome %v, want a SynAck and a welcome", out.Reply, out.Welcome)
	}
	var named []string
	for _, n := range out.Welcome.Notices {
		named = append(named, n.ID.Name)
	}
	slices.Sort(named)
	if want := []string{"a", "b", "seed"}; !slices.Equal(named, want) {
		t.Errorf("the welcome names %v, want %v (c is dead, the joiner is the recipient)", named, want)
	}
	from := chitchat.Inbound{From: seed.Self().Addr, Stream: true}
	joiner.Step(later, from, out.Reply)
	joiner.Step(later, from, out.Welcome)
	var live []string
	for _, id := range joiner.LiveNodes() {
		live = append(live, id.Name)
	}
	slices.Sort(live)
	if want := []string{"a", "b", "joiner", "seed"}; !slices.Equal(live, want) {
		t.Errorf("after its stream exchange the joiner holds %v live, want %v", live, want)
	}
	var dead []string
	for _, id := range joiner.DeadNodes() {
		dead = append(dead, id.Name)
	}
	if want := []string{"c"}; !slices.Equal(dead, want) {
		t.Errorf("after its stream exchange the joiner holds %v dead, want %v (heard of second-hand, no evidence)", dead, want)
	}
}
