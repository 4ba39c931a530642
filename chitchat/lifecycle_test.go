package chitchat_test

// Server lifecycle: Run, Shutdown, context cancellation. Every test runs in
// a synctest bubble, which itself fails if a goroutine of the bubble is
// still alive when the test function returns: that is the check that
// Shutdown and a cancelled context leave nothing behind.

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/chitchattest"
	"github.com/gossipkit/chitchat-go/transport"
)

func lifecycleNetwork(t *testing.T) *transport.Network {
	t.Helper()
	n, err := transport.NewNetwork(transport.NetworkConfig{MTU: chitchat.MaxDatagramSize})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// reopen checks that addr is free again by binding it.
func reopen(t *testing.T, n *transport.Network, addr chitchat.NodeID) {
	t.Helper()
	conn, err := n.Open(addr.Addr)
	if err != nil {
		t.Fatalf("address %v not released: %v", addr.Addr, err)
	}
	conn.Close()
}

func TestServerShutdownWaitsForGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		cfg := chitchattest.ForTest(1)
		cfg.Seeds = []string{"seed.local:2"} // a DNS loop too
		cfg.Resolver = &fakeResolver{}
		srv, err := chitchat.Spawn(t.Context(), cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		// A subscriber busy in its callback when Shutdown is called.
		release := make(chan struct{})
		srv.Subscribe("", func(chitchat.KeyChange) { <-release })
		if err := srv.Set("k", "v"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the callback is running and blocked

		shutDone := make(chan error, 1)
		go func() { shutDone <- srv.Shutdown() }()
		synctest.Wait()
		select {
		case err := <-shutDone:
			t.Fatalf("Shutdown returned (%v) while a subscriber callback was still running", err)
		default:
		}
		close(release)
		if err := <-shutDone; err != nil {
			t.Errorf("Shutdown() = %v, want nil", err)
		}
		reopen(t, n, cfg.ID)
		// synctest.Test fails if any goroutine of the server is left.
	})
}

func TestServerShutdownTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		srv, err := chitchat.Spawn(t.Context(), chitchattest.ForTest(1), n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("Shutdown() #%d = %v, want nil", i+1, err)
			}
		}
		if err := srv.Gossip(chitchattest.Addr(2)); !errors.Is(err, chitchat.ErrClosed) {
			t.Errorf("Gossip after Shutdown = %v, want ErrClosed", err)
		}
	})
}

// Every mutation of a stopped server returns ErrClosed and changes
// nothing (it used to succeed silently).
func TestMutationsAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		srv, err := chitchat.Spawn(t.Context(), chitchattest.ForTest(1), n)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Set("kept", "1"); err != nil {
			t.Fatal(err)
		}
		srv.Shutdown()
		for name, mutate := range map[string]func() error{
			"Set":            func() error { return srv.Set("k", "v") },
			"SetWithTTL":     func() error { return srv.SetWithTTL("k", "v") },
			"Delete":         func() error { return srv.Delete("kept") },
			"DeleteAfterTTL": func() error { return srv.DeleteAfterTTL("kept") },
			"ResetNodeState": func() error { return srv.ResetNodeStateIfUpdate(chitchattest.ForTest(2).ID, nil, 1, 0) },
			"Leave":          func() error { return srv.Leave(context.Background()) },
			"Join":           func() error { _, err := srv.Join(context.Background(), []string{"127.0.0.1:2"}); return err },
			"Gossip":         func() error { return srv.Gossip(chitchattest.Addr(2)) },
		} {
			if err := mutate(); !errors.Is(err, chitchat.ErrClosed) {
				t.Errorf("%s after Shutdown = %v, want ErrClosed", name, err)
			}
		}
		if v, ok := srv.Get("kept"); !ok || v != "1" {
			t.Errorf("state changed after Shutdown: kept = %q, %v", v, ok)
		}
		if _, ok := srv.Get("k"); ok {
			t.Error("a Set after Shutdown took effect")
		}
	})
}

// A deletion of a key this node does not have says so.
func TestDeleteMissingKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := chitchat.Spawn(t.Context(), chitchattest.ForTest(1), lifecycleNetwork(t))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		for _, del := range []func(string) error{srv.Delete, srv.DeleteAfterTTL} {
			if err := del("missing"); !errors.Is(err, chitchat.ErrNoSuchKey) {
				t.Errorf("deleting a missing key = %v, want ErrNoSuchKey", err)
			}
		}
	})
}

func TestServerRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		srv, err := chitchat.New(chitchattest.ForTest(1), n)
		if err != nil {
			t.Fatal(err)
		}
		runErr := make(chan error, 1)
		go func() { runErr <- srv.Run(t.Context()) }()
		synctest.Wait() // the first Run is running
		if err := srv.Run(t.Context()); !errors.Is(err, chitchat.ErrRunning) {
			t.Errorf("second Run() = %v, want ErrRunning", err)
		}
		if err := srv.Shutdown(); err != nil {
			t.Errorf("Shutdown() = %v", err)
		}
		if err := <-runErr; err != nil {
			t.Errorf("first Run() = %v, want nil after Shutdown", err)
		}

		spawned, err := chitchat.Spawn(t.Context(), chitchattest.ForTest(2), n)
		if err != nil {
			t.Fatal(err)
		}
		if err := spawned.Run(t.Context()); !errors.Is(err, chitchat.ErrRunning) {
			t.Errorf("Run() on a spawned server = %v, want ErrRunning", err)
		}
		if err := spawned.Shutdown(); err != nil {
			t.Errorf("Shutdown() = %v", err)
		}
	})
}

func TestServerShutdownNeverRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		cfg := chitchattest.ForTest(1)
		srv, err := chitchat.New(cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chitchat.New(cfg, n); err == nil {
			t.Fatal("a second New on a bound address succeeded")
		}
		if err := srv.Shutdown(); err != nil {
			t.Errorf("Shutdown() of a never-run server = %v, want nil", err)
		}
		select {
		case <-srv.Done():
		default:
			t.Error("Done() not closed")
		}
		again, err := chitchat.New(cfg, n)
		if err != nil {
			t.Fatalf("New on the released address: %v", err)
		}
		if err := again.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := srv.Run(t.Context()); !errors.Is(err, chitchat.ErrRunning) {
			t.Errorf("Run() after Shutdown = %v, want ErrRunning", err)
		}
	})
}

func TestServerStopsWhenSpawnContextIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := lifecycleNetwork(t)
		cfg := chitchattest.ForTest(1)
		ctx, cancel := context.WithCancel(t.Context())
		srv, err := chitchat.Spawn(ctx, cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		cancel()
		<-srv.Done()
		if err := srv.Err(); err != nil {
			t.Errorf("Err() after cancellation = %v, want nil", err)
		}
		if err := srv.Shutdown(); err != nil {
			t.Errorf("Shutdown() after cancellation = %v, want nil", err)
		}
		reopen(t, n, cfg.ID)
		// The watch ends with the server.
		for range srv.WatchLiveNodes(context.Background()) {
		}
	})
}
