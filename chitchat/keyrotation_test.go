package chitchat_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// One node rotates the gossip key of the whole cluster, as `serf keys`
// does: install, use, remove, without downtime.
func TestClusterWideKeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		k1, k2 := mustKey(t, 1), mustKey(t, 2)
		var rings []*chitchat.Keyring
		var nodes []*chitchat.Server
		for i := range 3 {
			ring, _ := chitchat.NewKeyring(k1)
			rings = append(rings, ring)
			nodes = append(nodes, spawnSec(t, net, i, withRing(ring)))
		}
		waitLive(t, nodes[0], 3, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		steps := []struct {
			name  string
			op    func(context.Context, chitchat.Key) (chitchat.KeyResponse, error)
			key   chitchat.Key
			check func(keys []chitchat.Key) bool
		}{
			{"install", nodes[0].InstallKey, k2, func(keys []chitchat.Key) bool { return slices.Equal(keys, []chitchat.Key{k1, k2}) }},
			{"use", nodes[0].UseKey, k2, func(keys []chitchat.Key) bool { return slices.Equal(keys, []chitchat.Key{k2, k1}) }},
			{"remove", nodes[0].RemoveKey, k1, func(keys []chitchat.Key) bool { return slices.Equal(keys, []chitchat.Key{k2}) }},
		}
		for _, st := range steps {
			resp, err := st.op(ctx, st.key)
			if err != nil || resp.Nodes != 3 || resp.Done != 3 {
				t.Fatalf("%s: %+v, %v; want 3 of 3 nodes", st.name, resp, err)
			}
			for i, ring := range rings {
				if !st.check(ring.Keys()) {
					t.Errorf("%s: node %d's keys = %v", st.name, i, fingerprints(ring.Keys()))
				}
			}
		}
		// The cluster kept running, and a node with only the new key joins.
		ring, _ := chitchat.NewKeyring(k2)
		spawnSec(t, net, 3, withRing(ring))
		waitLive(t, nodes[1], 4, 10*time.Second)
		// No key material in node states (the demo shows them).
		for _, ns := range nodes[1].Snapshot().Nodes {
			for k, v := range ns.AllKeyValues() {
				for _, key := range []chitchat.Key{k1, k2} {
					if strings.Contains(v.Value, key.String()) {
						t.Errorf("node state %v holds key %s in clear under %q", ns.ID(), key.Fingerprint(), k)
					}
				}
			}
		}
	})
}

// A node that still accepts plaintext refuses key operations: a sender
// without a key could forge them.
func TestKeyRotationRefusedDuringMigration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNet(t)
		k1, k2 := mustKey(t, 1), mustKey(t, 2)
		r0, _ := chitchat.NewKeyring(k1)
		r1, _ := chitchat.NewKeyring(k1)
		a := spawnSec(t, net, 0, withRing(r0))
		spawnSec(t, net, 1, func(c *chitchat.Config) { c.Keyring = r1; c.AcceptPlaintext = true })
		waitLive(t, a, 2, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := a.InstallKey(ctx, k2)
		if err == nil || len(resp.Errors) != 1 {
			t.Fatalf("InstallKey = %+v, %v; want one refusal", resp, err)
		}
		if slices.Contains(r1.Keys(), k2) {
			t.Error("the migrating node installed the key")
		}
		plain := spawnSec(t, net, 2, nil)
		if _, err := plain.InstallKey(ctx, k2); err == nil {
			t.Error("a node without a keyring accepted a key operation")
		}
	})
}

func fingerprints(keys []chitchat.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Fingerprint())
	}
	return out
}

// Key operations on a stopped server return ErrClosed and leave its
// keyring as it was (every mutation of a stopped server does:
// TestMutationsAfterShutdown).
func TestKeyOperationsAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k1, k2 := mustKey(t, 1), mustKey(t, 2)
		ring, _ := chitchat.NewKeyring(k1)
		s := spawnSec(t, newNet(t), 0, withRing(ring))
		s.Shutdown()
		for name, op := range map[string]func() (chitchat.KeyResponse, error){
			"InstallKey": func() (chitchat.KeyResponse, error) { return s.InstallKey(t.Context(), k2) },
			"UseKey":     func() (chitchat.KeyResponse, error) { return s.UseKey(t.Context(), k2) },
			"RemoveKey":  func() (chitchat.KeyResponse, error) { return s.RemoveKey(t.Context(), k1) },
		} {
			if _, err := op(); !errors.Is(err, chitchat.ErrClosed) {
				t.Errorf("%s after Shutdown = %v, want ErrClosed", name, err)
			}
		}
		if keys := ring.Keys(); !slices.Equal(keys, []chitchat.Key{k1}) {
			t.Errorf("keyring changed after Shutdown: %v", fingerprints(keys))
		}
	})
}
