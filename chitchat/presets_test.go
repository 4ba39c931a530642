package chitchat_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Each preset, with an ID and a cluster, is valid and runs a cluster.
func TestPresets(t *testing.T) {
	for name, preset := range map[string]func() chitchat.Config{
		"LAN":   chitchat.DefaultLANConfig,
		"WAN":   chitchat.DefaultWANConfig,
		"Local": chitchat.DefaultLocalConfig,
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newNet(t)
				var nodes []*chitchat.Server
				for i := range 3 {
					cfg := preset()
					cfg.ID = chitchat.NodeID{Name: name + "-" + string(rune('a'+i)), Addr: secAddr(i)}
					cfg.ClusterID = "presets"
					cfg.Seeds = []string{secAddr(0).String()}
					if err := cfg.Validate(); err != nil {
						t.Fatal(err)
					}
					s, err := chitchat.Spawn(t.Context(), cfg, net)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Shutdown() })
					nodes = append(nodes, s)
				}
				d := waitLive(t, nodes[2], 3, time.Minute)
				t.Logf("%s: 3 nodes live after %v (virtual)", name, d)
			})
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node alone for a minute says so, then after 2, 4, 8... minutes.
func TestAloneIsWarned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		s := spawnSec(t, newNet(t), 0, func(c *chitchat.Config) {
			c.Seeds = []string{"127.0.0.1:1"} // nobody there
			c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		})
		time.Sleep(3*time.Minute + time.Second)
		if n := strings.Count(logs.String(), "this node is alone"); n != 2 {
			t.Errorf("%d warnings in 3 minutes alone, want 2 (at 1 and 2 minutes):\n%s", n, logs.String())
		}
		_ = s
	})
}
