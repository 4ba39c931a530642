package main

import (
	"context"
	"log/slog"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
)

// discovery is the node's service catalog: its agent (announcing the
// services of --service and --service_file, running their checks), the
// Consul-shaped HTTP API over it, and with --dns_addr its DNS server.
type discovery struct {
	agent  *catalog.Agent
	api    *consulAPI
	dns    *dnsServer // nil without --dns_addr
	cancel context.CancelFunc
	done   chan error // the agent's Run result
}

// startDiscovery registers the node's services and starts the agent and,
// with --dns_addr, the DNS server.
func startDiscovery(o catalogOptions, srv *chitchat.Server, clusterID string, logger *slog.Logger) (*discovery, error) {
	// Indexes start at the node's generation (its start time in
	// microseconds): a restarted node's indexes exceed its previous
	// incarnation's, so clients' blocking queries never wait on a stale one.
	cfg := catalog.Config{Datacenter: datacenterOf(clusterID), FirstIndex: srv.Self().Generation, Logger: logger}
	agent, err := catalog.New(cfg, srv)
	if err != nil {
		return nil, err
	}
	for _, s := range o.services {
		if err := agent.Register(s); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &discovery{agent: agent, api: newConsulAPI(agent, srv), cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- agent.Run(ctx) }()
	if o.dnsAddr.IsValid() {
		r := newDNSResponder(agent.View, o.domain, o.dnsTTL, newLockedRand())
		if d.dns, err = startDNS(o.dnsAddr, r, logger); err != nil {
			d.stop(logger)
			return nil, err
		}
	}
	return d, nil
}

// datacenterOf is the datacenter the catalog reports: the cluster's name
// (one chitchat cluster is one Consul datacenter) when it can be a DNS
// label, else Consul's default.
func datacenterOf(clusterID string) string {
	if catalog.IsDNSLabel(clusterID) {
		return clusterID
	}
	return catalog.DefaultDatacenter
}

// stop stops the DNS server, then the agent.
func (d *discovery) stop(logger *slog.Logger) {
	if d.dns != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := d.dns.shutdown(ctx); err != nil {
			logger.Warn("DNS server did not stop cleanly", "err", err)
		}
	}
	d.cancel()
	if err := <-d.done; err != nil {
		logger.Warn("catalog agent stopped with an error", "err", err)
	}
}
