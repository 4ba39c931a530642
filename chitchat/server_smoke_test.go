package chitchat

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/transport"
)

func TestSmokeCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := transport.NewNetwork(transport.NetworkConfig{MTU: MaxDatagramSize, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var srvs []*Server
		for i := range 5 {
			addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(10000+i))
			cfg := Config{ID: NodeID{Name: fmt.Sprintf("node_%d", i), Addr: addr}, ClusterID: "c", GossipInterval: 100 * time.Millisecond,
				Seeds: []string{"127.0.0.1:10000"}, RandSeed: uint64(i + 1)}
			cfg.FailureDetector.InitialInterval = 100 * time.Millisecond
			s, err := Spawn(t.Context(), cfg, net)
			if err != nil {
				t.Fatal(err)
			}
			srvs = append(srvs, s)
		}
		srvs[3].Set("k", "v")
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for nodes := range srvs[1].WatchLiveNodes(ctx) {
			if len(nodes) == 5 {
				break
			}
		}
		t.Logf("5 live after %v (virtual)", time.Since(start))
		ns, _ := srvs[1].NodeState(srvs[3].Self())
		if v, _ := ns.Get("k"); v != "v" {
			t.Errorf("k = %q", v)
		}
		for _, s := range srvs {
			if err := s.Shutdown(); err != nil {
				t.Error(err)
			}
		}
		t.Logf("stats %+v", srvs[1].Stats())
	})
}
