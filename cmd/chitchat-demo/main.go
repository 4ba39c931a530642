// Command chitchat-demo runs a node of a chitchat gossip cluster behind an
// HTTP API. It is a drop-in replacement for upstream's chitchat-test: same
// flags, same endpoints on the same address, same JSON; plus /events (the
// state as Server-Sent Events), /ui (a live page), /metrics (Prometheus),
// /healthz, /v1/agent/members (Consul-shaped), /delete_after_ttl, and a
// "cluster" subcommand that runs a local cluster in one command:
//
//	go run ./cmd/chitchat-demo cluster -n 5
//
// Beyond upstream: gossip encryption (--gossip_key, --gossip_key_file;
// /v1/keyring shows key fingerprints), a graceful leave on SIGINT/SIGTERM
// (peers report the node in left_nodes, not dead_nodes), and a WireGuard
// overlay built from gossip (--overlay; /overlay/peers, /overlay/wg-quick),
// and a service catalog over gossip (--service, --service_file) served with
// Consul's read-only HTTP API (consul.go) and DNS (--dns_addr, dns.go).
//
// The node is a thin main over the library's public API: flags are parsed
// here (flags.go, flags_keys.go, flags_overlay.go) and nowhere else. The
// overlay is linked only in the build with -tags overlay, named
// chitchat-demo-overlay, which the default build hands --overlay over to
// (overlay_handoff.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/failuredetector"
	"github.com/gossipkit/chitchat-go/transport"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the node could not start or failed while running
	exitUsage = 2 // bad flags
)

// run is main without the os.Exit, so that the flow reads top to bottom.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "cluster" {
		return runCluster(args[1:], stdout, stderr)
	}
	opts, err := parseNodeFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		reportFlagErrors(stderr, "chitchat-demo", err)
		return exitUsage
	}
	if opts.overlay != nil && !overlayLinked {
		return osHandoff.run(args, stderr, "chitchat-demo") // overlay_handoff.go
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	applySidecarRuntime(opts.overlay != nil, os.LookupEnv, logger) // sidecar.go
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runNode(ctx, opts, logger, stdout); err != nil {
		logger.Error("node failed", "err", err)
		return exitError
	}
	return exitOK
}

// reportFlagErrors prints every problem of err (an errors.Join) on its own
// line.
func reportFlagErrors(w io.Writer, cmd string, err error) {
	reportProblems(w, cmd+": invalid command line:", err)
	fmt.Fprintf(w, "Run %s --help for the list of flags.\n", cmd)
}

func reportProblems(w io.Writer, heading string, err error) {
	fmt.Fprintln(w, heading)
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "  - %s\n", line)
	}
}

// config builds the library configuration: upstream chitchat-test's fixed
// settings (upstream chitchat-test's), with the cluster id and grace periods overridable,
// and the gossip keys if any.
func (o nodeOptions) config(logger *slog.Logger) (chitchat.Config, error) {
	cfg := chitchat.Config{
		ID: chitchat.NodeID{
			Name: o.nodeID,
			// Upstream uses the start time in seconds, which repeats when a
			// node restarts within the same second, and a restarted node
			// MUST take a larger generation (docs/PROTOCOL.md §2.1). Microseconds grow
			// at every restart and stay below 2^53 until the year 2255, so
			// JavaScript (the /ui page) reads them exactly.
			Generation: uint64(time.Now().UnixMicro()),
			Addr:       o.public,
		},
		ClusterID:      o.clusterID,
		GossipInterval: o.interval,
		ListenAddr:     o.listen,
		Seeds:          o.seeds,
		FailureDetector: failuredetector.Config{
			PhiThreshold:        o.phi,
			InitialInterval:     o.initial,
			DeadNodeGracePeriod: o.deadGrace,
			// SamplingWindowSize and MaxInterval: library defaults.
		},
		MarkedForDeletionGracePeriod: o.tombGrace,
		Logger:                       logger,
	}
	if len(o.gossipKeys) > 0 {
		kr, err := chitchat.NewKeyring(o.gossipKeys[0], o.gossipKeys[1:]...)
		if err != nil {
			return chitchat.Config{}, err
		}
		cfg.Keyring, cfg.AcceptPlaintext, cfg.SendPlaintext = kr, o.acceptPlaintext, o.sendPlaintext
	}
	return cfg, nil
}

// shutdownTimeout bounds the HTTP server's graceful shutdown.
const shutdownTimeout = 5 * time.Second

// runNode runs one node until ctx is done (SIGINT/SIGTERM) or the gossip or
// HTTP server fails. It prints one line on stdout once every socket is
// bound (the launcher and the tests wait for it).
//
// Stopping, in order: leave the cluster (at most --leave_timeout, so that
// peers report this node left rather than dead), stop HTTP (ending the
// /events streams), close the overlay, stop gossip.
func runNode(ctx context.Context, o nodeOptions, logger *slog.Logger, stdout io.Writer) error {
	cfg, err := o.config(logger)
	if err != nil {
		return err
	}
	// One TCP port, as upstream's demo: HTTP, and chitchat's stream
	// exchanges (bulk state), told apart by their first byte.
	tcp, err := listenHTTP(o.listen)
	if err != nil {
		return fmt.Errorf("cannot serve HTTP on %v/TCP: %w", o.listen, err)
	}
	ln, streams := transport.SplitListener(limitListener(tcp, o.http.maxConns))
	srv, err := chitchat.New(cfg, transport.WithStreamListener(transport.UDP{}, streams))
	if err != nil {
		ln.Close()
		return err
	}
	var mesh *overlayMesh
	if o.overlay != nil {
		if mesh, err = newOverlayMesh(o.overlay, o.public, srv, logger); err != nil {
			ln.Close()
			srv.Shutdown()
			return fmt.Errorf("cannot start the overlay: %w", err)
		}
	}
	disc, err := startDiscovery(o.catalog, srv, cfg.ClusterID, logger)
	if err != nil {
		if mesh != nil {
			mesh.Close()
		}
		ln.Close()
		srv.Shutdown()
		return fmt.Errorf("cannot start the service catalog: %w", err)
	}

	// Cancelling httpCtx ends every request, the long-lived /events streams
	// included, so that the HTTP server's graceful shutdown is quick.
	httpCtx, cancelHTTP := context.WithCancel(context.Background())
	defer cancelHTTP()
	a := newAPI(srv, cfg, mesh, o.http)
	a.consul = disc.api
	hs := newHTTPServer(httpCtx, a.routes(), logger)
	gossipDone := make(chan error, 1)
	go func() { gossipDone <- srv.Run(context.Background()) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(ln) }()

	base := httpBase(o.listen)
	attrs := []any{"node", cfg.ID.Name, "generation", cfg.ID.Generation, "listen", o.listen, "public", o.public,
		"seeds", o.seeds, "interval", o.interval, "cluster", o.clusterID}
	if cfg.Keyring != nil {
		attrs = append(attrs, "gossip_keys", len(cfg.Keyring.Keys()), "primary_key", cfg.Keyring.Keys()[0].Fingerprint(),
			"accept_plaintext", cfg.AcceptPlaintext, "send_plaintext", cfg.SendPlaintext)
	}
	if n := len(o.catalog.services); n > 0 || disc.dns != nil {
		attrs = append(attrs, "services", n, "dns_addr", o.catalog.dnsAddr, "domain", o.catalog.domain)
	}
	if mesh != nil {
		attrs = append(attrs, "overlay_ip", mesh.OverlayIP(), "wg_endpoint", mesh.Endpoint(), "wg_public_key", mesh.PublicKey())
	}
	logger.Info("node started", attrs...)
	fmt.Fprintf(stdout, "node %q serving %s/ (ui: %s/ui)\n", cfg.ID.Name, base, base)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "cause", context.Cause(ctx))
	case err := <-gossipDone:
		runErr = fmt.Errorf("gossip server stopped: %w", err)
	case err := <-httpDone:
		runErr = fmt.Errorf("HTTP server stopped: %w", err)
	}
	leave(srv, o.leaveTimeout, logger)
	cancelHTTP()
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shCtx); err != nil {
		logger.Warn("HTTP server did not stop in time; closing its connections", "err", err)
		hs.Close()
	}
	disc.stop(logger)
	if mesh != nil {
		if err := mesh.Close(); err != nil {
			logger.Warn("overlay did not close cleanly", "err", err)
		}
	}
	if err := srv.Shutdown(); err != nil && runErr == nil {
		runErr = fmt.Errorf("gossip server: %w", err)
	}
	if runErr == nil {
		logger.Info("node stopped")
	}
	return runErr
}

// leave announces that the node leaves the cluster and waits, at most
// timeout, until peers know (0 skips it). Peers that learn it report the
// node as left at once; the others will find it dead. Either way the node
// stops: a leave that times out is only logged.
func leave(srv *chitchat.Server, timeout time.Duration, logger *slog.Logger) {
	if timeout <= 0 {
		return
	}
	select {
	case <-srv.Done():
		return // the gossip server failed: nobody to tell
	default:
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Leave(ctx); err != nil {
		logger.Warn("leaving the cluster: not every peer was told; they will find this node dead instead",
			"err", err, "timeout", timeout)
		return
	}
	logger.Info("left the cluster", "took", time.Since(start).Round(time.Millisecond))
}

// httpBase is the URL prefix of the HTTP API: the listen address, or
// localhost when it is a wildcard.
func httpBase(listen netip.AddrPort) string {
	if listen.Addr().IsUnspecified() {
		loop := netip.MustParseAddr("127.0.0.1")
		if listen.Addr().Is6() {
			loop = netip.IPv6Loopback()
		}
		listen = netip.AddrPortFrom(loop, listen.Port())
	}
	return "http://" + listen.String()
}
