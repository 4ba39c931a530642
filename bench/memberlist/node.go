package main

import (
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// profileConfig returns the memberlist configuration of a -profile:
//
//   - lan: memberlist.DefaultLANConfig(), memberlist's own default (a probe
//     every second, gossip every 200 ms, push/pull every 30 s);
//   - fast: the LAN configuration with every timer ×0.3: ProbeInterval
//     300 ms, ProbeTimeout 150 ms, GossipInterval 60 ms, PushPullInterval
//     9 s, GossipToTheDeadTime 9 s, so that each node probes one peer every
//     300 ms, the pace of chitchat-bench's 300 ms gossip round. The
//     multipliers (SuspicionMult, RetransmitMult), the fan-outs (GossipNodes,
//     IndirectChecks), TCP fallback pings and compression stay LAN's.
func profileConfig(profile string) (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	switch profile {
	case "lan":
	case "fast":
		for _, d := range []*time.Duration{&c.ProbeInterval, &c.ProbeTimeout, &c.GossipInterval,
			&c.PushPullInterval, &c.GossipToTheDeadTime} {
			*d = *d * 3 / 10
		}
	default:
		return nil, fmt.Errorf("-profile %q: want lan or fast", profile)
	}
	return c, nil
}

// pushPullPeriod is the interval at which one node of an n-node cluster runs
// a periodic push/pull: memberlist stretches PushPullInterval by one step per
// doubling of the cluster above 32 nodes (its unexported pushPullScale).
func pushPullPeriod(interval time.Duration, n int) time.Duration {
	const threshold = 32
	if n <= threshold {
		return interval
	}
	return time.Duration(math.Ceil(math.Log2(float64(n))-math.Log2(threshold))+1) * interval
}

func nodeName(i int) string { return fmt.Sprintf("node-%04d", i) }

// node is one memberlist instance and its send counters.
type node struct {
	ml   *memberlist.Memberlist
	c    *counters
	addr string // "127.0.0.1:port", bound
}

// startNode creates node i on 127.0.0.1:port (port 0: a free port) with the
// profile's configuration, logs discarded, its events going to rec and its
// sends counted (and dropped with probability loss, drawn from seed).
func startNode(i, port int, profile string, loss float64, seed uint64, rec *recorder) (*node, error) {
	discard := log.New(io.Discard, "", 0)
	inner, err := bindTransport(port, discard)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	port = inner.GetAutoBindPort()
	c := &counters{}
	cfg, err := profileConfig(profile)
	if err != nil {
		inner.Shutdown()
		return nil, err
	}
	cfg.Name = nodeName(i)
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", port
	cfg.AdvertiseAddr, cfg.AdvertisePort = "127.0.0.1", port
	cfg.Logger = discard
	cfg.Events = observer{i, rec}
	cfg.Transport = newMeteredTransport(inner, c, newDropper(loss, seed+uint64(i)))
	ml, err := memberlist.Create(cfg)
	if err != nil {
		cfg.Transport.Shutdown()
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	return &node{ml: ml, c: c, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
}

// bindTransport opens memberlist's NetTransport (TCP and UDP on the same
// port) on 127.0.0.1:port. With port 0 the kernel picks the TCP port and the
// UDP bind of the same number can lose a race with another process: it is
// retried, as memberlist.Create does for its own transports.
func bindTransport(port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var t *memberlist.NetTransport
		t, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: port, Logger: logger})
		if err == nil {
			return t, nil
		}
	}
	return nil, err
}
