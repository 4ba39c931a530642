package chitchat

import (
	"time"

	"github.com/gossipkit/chitchat-go/failuredetector"
)

// Presets, as memberlist's DefaultLANConfig, DefaultWANConfig and
// DefaultLocalConfig: a Config with timings for a kind of network. Set ID,
// ClusterID and Seeds (and a Keyring) before use. Fields left zero take
// the defaults documented on Config.

// DefaultLANConfig suits a data centre or a cloud VPC: round-trip times
// under a few milliseconds, a path MTU of 1,500 bytes or more (WireGuard
// and VPC tunnels included).
func DefaultLANConfig() Config {
	return Config{
		// Half a second: a death is found in 3-5 s (phi 8 over a mean
		// of about a round), news is pushed at once anyway.
		GossipInterval: 500 * time.Millisecond,
		// Every datagram fits a 1,420-byte tunnel MTU: no IP fragments.
		MaxDatagramSize: 1400,
		FailureDetector: failuredetector.Config{
			PhiThreshold: 8,
			// A dead node is forgotten after a day, as upstream.
			DeadNodeGracePeriod: 24 * time.Hour,
		},
		// Tombstones live an hour: a node away for longer is brought
		// back by a reset (a full resend of the node's state).
		MarkedForDeletionGracePeriod: time.Hour,
		StreamSyncInterval:           30 * time.Second,
	}
}

// DefaultWANConfig suits nodes spread over regions: round-trip times of
// 100-300 ms, some loss, paths with a 1,280-byte IPv6 minimum MTU.
func DefaultWANConfig() Config {
	return Config{
		// Slower rounds: less traffic over costly links.
		GossipInterval: 2 * time.Second,
		// IPv6's minimum MTU (1,280) minus IP and UDP headers.
		MaxDatagramSize: 1200,
		FailureDetector: failuredetector.Config{
			// Jittery links: a higher threshold before declaring a
			// death (about 12 rounds of silence, ~25 s).
			PhiThreshold:        12,
			DeadNodeGracePeriod: 24 * time.Hour,
		},
		MarkedForDeletionGracePeriod: 4 * time.Hour,
		// Pushes cost more over the WAN: fewer of them per second.
		PushRate:           200,
		StreamSyncInterval: 60 * time.Second,
		StreamTimeout:      30 * time.Second,
	}
}

// DefaultLocalConfig suits nodes on one host or in tests: loopback has a
// 64 KiB MTU and no loss.
func DefaultLocalConfig() Config {
	return Config{
		GossipInterval:  100 * time.Millisecond,
		MaxDatagramSize: MaxDatagramSize,
		FailureDetector: failuredetector.Config{
			PhiThreshold: 8,
			// Processes come and go: forget them within the hour.
			DeadNodeGracePeriod: time.Hour,
		},
		MarkedForDeletionGracePeriod: 10 * time.Minute,
		StreamSyncInterval:           15 * time.Second,
	}
}
