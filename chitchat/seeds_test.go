package chitchat_test

// Seeds given as host names (docs/PROTOCOL.md §10.1): resolved at start, every address
// counting, and re-resolved every DNSRefreshInterval (default 60 s, the
// first refresh one interval after start), with a fake Resolver and raw
// peers standing in for the seeds. The seeds never answer, so the node has
// no live peer and gossips with a seed every round.

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
)

// fakeResolver answers from a table; unknown hosts are not found.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	lookups []string // host of every lookup, in order
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, host)
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(a), nil
}

func (r *fakeResolver) set(host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string][]netip.Addr{}
	}
	if ips == nil {
		delete(r.answers, host)
		return
	}
	r.answers[host] = nil
	for _, ip := range ips {
		r.answers[host] = append(r.answers[host], netip.MustParseAddr(ip))
	}
}

func (r *fakeResolver) numLookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lookups)
}

func seedAddrs(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

func TestServerDNSSeeds(t *testing.T) {
	tests := []struct {
		name    string
		refresh time.Duration // Config.DNSRefreshInterval
		period  time.Duration // the effective period
	}{
		{name: "default interval", refresh: 0, period: 60 * time.Second},
		{name: "5s interval", refresh: 5 * time.Second, period: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testDNSSeeds(t, tt.refresh, tt.period) })
		})
	}
}

func testDNSSeeds(t *testing.T, refresh, period time.Duration) {
	c := forTestCluster(t)
	const (
		a, b, later, static = "10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.9:7000"
	)
	peers := map[string]*chitchattest.Peer{}
	for _, addr := range []string{a, b, later, static} {
		peers[addr] = c.OpenPeer(netip.MustParseAddrPort(addr))
	}
	dns := &fakeResolver{}
	dns.set("seed.local", "10.0.0.1", "10.0.0.2")
	start := time.Now()
	srv := c.Node(c.AddNode("node-1", 1,
		chitchattest.WithSeeds("seed.local:7000", static),
		chitchattest.WithConfig(func(cfg *chitchat.Config) {
			cfg.Resolver = dns
			cfg.DNSRefreshInterval = refresh
		})))

	// At start: the literal plus every address the name resolves to.
	if got := dns.numLookups(); got != 1 {
		t.Errorf("lookups at start = %d, want 1", got)
	}
	if got, want := srv.Snapshot().Seeds, seedAddrs(a, b, static); !slices.Equal(got, want) {
		t.Errorf("seeds at start = %v, want %v", got, want)
	}
	// Just before the first refresh, each seed has been gossiped with.
	time.Sleep(period - time.Millisecond)
	for _, addr := range []string{a, b, static} {
		if _, ok := peers[addr].NextOfType(chitchat.TypeSyn, 0); !ok {
			t.Errorf("seed %s got no Syn in the first %v", addr, period)
		}
	}
	if r, ok := peers[later].Next(0); ok {
		t.Errorf("%s got %T before it was a seed", later, r.Msg)
	}
	if got := dns.numLookups(); got != 1 {
		t.Errorf("lookups before the first refresh = %d, want 1", got)
	}

	// The name now resolves elsewhere: after the refresh the new address is
	// a seed and the old ones are not.
	dns.set("seed.local", "10.0.0.3")
	time.Sleep(2 * time.Millisecond) // just past start + period
	if got := dns.numLookups(); got != 2 {
		t.Errorf("lookups after %v = %d, want 2", time.Since(start), got)
	}
	if got, want := srv.Snapshot().Seeds, seedAddrs(later, static); !slices.Equal(got, want) {
		t.Errorf("seeds after the refresh = %v, want %v", got, want)
	}
	for _, addr := range []string{a, b} { // drain what a round at exactly start+period sent
		for {
			if _, ok := peers[addr].Next(0); !ok {
				break
			}
		}
	}
	r, ok := peers[later].NextOfType(chitchat.TypeSyn, time.Second)
	if !ok {
		t.Fatalf("new seed %s got no Syn within 1s of the refresh", later)
	}
	t.Logf("first Syn to the re-resolved seed at %v (virtual)", r.At.Sub(start))
	if r.At.Sub(start) < period {
		t.Errorf("new seed gossiped with at %v, before the refresh at %v", r.At.Sub(start), period)
	}
	quiet := time.Now().Add(min(period-time.Second-10*time.Millisecond, 10*time.Second))
	for _, addr := range []string{a, b} {
		if r, ok := peers[addr].Next(time.Until(quiet)); ok {
			t.Errorf("old seed %s got %T at %v, after the refresh", addr, r.Msg, r.At.Sub(start))
		}
	}

	// Resolution fails at the next refresh: the name contributes nothing.
	dns.set("seed.local")
	if time.Since(start) >= 2*period {
		t.Fatalf("test bug: already %v into the test, past the second refresh", time.Since(start))
	}
	time.Sleep(2*period + time.Millisecond - time.Since(start))
	if got := dns.numLookups(); got != 3 {
		t.Errorf("lookups after %v = %d, want 3", time.Since(start), got)
	}
	if got, want := srv.Snapshot().Seeds, seedAddrs(static); !slices.Equal(got, want) {
		t.Errorf("seeds after a failed lookup = %v, want %v", got, want)
	}
}
