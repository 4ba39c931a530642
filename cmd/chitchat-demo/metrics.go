package main

import (
	"log/slog"
	"strconv"
	"sync"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// metricsHandler serves /metrics: the node's chitchat metrics, the Go
// runtime's and the process's, and more (the overlay's). The metrics are
// read at scrape time; nothing is built before the first scrape.
func metricsHandler(srv *chitchat.Server, log *slog.Logger, more ...metricsSource) minihttp.Handler {
	var stats metricsSource
	var once sync.Once
	sources := []metricsSource{
		func(m *metricsText) {
			once.Do(func() { stats = newStatsCollector(srv).write })
			stats(m)
		},
		goMetrics,
		func(m *metricsText) { processMetrics(m, log) },
	}
	return metricsHTTPHandler(append(sources, more...)...)
}

// statsCollector turns Server.Stats into metrics at scrape time: the library
// keeps plain counters and the demo owns the metric names.
type statsCollector struct {
	srv *chitchat.Server
	// counters and gauges, each with the Stats field it reads
	values []statsMetric
}

type statsMetric struct {
	name, help string
	kind       metricKind
	value      func(chitchat.Stats) float64
}

func newStatsCollector(srv *chitchat.Server) *statsCollector {
	counter := func(name, help string, f func(chitchat.Stats) uint64) statsMetric {
		return statsMetric{name: name, help: help, kind: counterKind, value: func(s chitchat.Stats) float64 { return float64(f(s)) }}
	}
	gauge := func(name, help string, f func(chitchat.Stats) float64) statsMetric {
		return statsMetric{name: name, help: help, kind: gaugeKind, value: f}
	}
	return &statsCollector{
		srv: srv,
		values: []statsMetric{
			counter("chitchat_messages_sent_total", "Gossip messages sent.", func(s chitchat.Stats) uint64 { return s.MessagesSent }),
			counter("chitchat_bytes_sent_total", "Bytes of gossip messages sent.", func(s chitchat.Stats) uint64 { return s.BytesSent }),
			counter("chitchat_messages_received_total", "Gossip datagrams received.", func(s chitchat.Stats) uint64 { return s.MessagesReceived }),
			counter("chitchat_bytes_received_total", "Bytes of gossip datagrams received.", func(s chitchat.Stats) uint64 { return s.BytesReceived }),
			counter("chitchat_decode_errors_total", "Received datagrams dropped as malformed.", func(s chitchat.Stats) uint64 { return s.DecodeErrors }),
			counter("chitchat_send_errors_total", "Messages that could not be sent.", func(s chitchat.Stats) uint64 { return s.SendErrors }),
			counter("chitchat_recv_errors_total", "Transient receive errors.", func(s chitchat.Stats) uint64 { return s.RecvErrors }),
			counter("chitchat_events_dropped_total", "Key-change events dropped because a subscriber was too slow.", func(s chitchat.Stats) uint64 { return s.EventsDropped }),
			counter("chitchat_bad_cluster_total", "Syns from another cluster, answered with BadCluster.", func(s chitchat.Stats) uint64 { return s.Engine.BadClusterSent }),
			counter("chitchat_node_resets_total", "Node states reset from a peer's full state.", func(s chitchat.Stats) uint64 { return s.Engine.NodeResets }),
			counter("chitchat_node_deltas_rejected_total", "Node deltas rejected as stale or inapplicable.", func(s chitchat.Stats) uint64 { return s.Engine.NodeDeltasRejected }),
			counter("chitchat_node_deltas_refused_total", "Node deltas refused for exceeding the configured limits.", func(s chitchat.Stats) uint64 { return s.Engine.NodeDeltasRefused }),
			counter("chitchat_nodes_refused_total", "New nodes ignored because the node limit was reached.", func(s chitchat.Stats) uint64 { return s.Engine.NodesRefused }),
			counter("chitchat_nodes_evicted_total", "Nodes dropped to make room for new ones (never live, superseded, long dead, or never heard from).", func(s chitchat.Stats) uint64 { return s.Engine.NodesEvicted }),
			// Refusals of hostile or impossible input (docs/design/scale.md §6).
			counter("chitchat_claims_refused_total", "Digest entries and notices refused: a heartbeat or version above 2^62, or a name above the limit.", func(s chitchat.Stats) uint64 { return s.Engine.ClaimsRefused }),
			counter("chitchat_self_deltas_ignored_total", "Node deltas about this node, never applied.", func(s chitchat.Stats) uint64 { return s.Engine.SelfDeltasIgnored }),
			counter("chitchat_refutations_total", "Claims about this node above its own state, refuted by moving past them.", func(s chitchat.Stats) uint64 { return s.Engine.Refutations }),
			counter("chitchat_reincarnations_total", "Claims about this node too large to refute, answered with a new generation.", func(s chitchat.Stats) uint64 { return s.Engine.Reincarnations }),
			counter("chitchat_replies_capped_total", "Plaintext Syns from unknown senders left unanswered (no answer fits 3 times their size).", func(s chitchat.Stats) uint64 { return s.Engine.RepliesCapped }),
			counter("chitchat_messages_refused_total", "Messages handed to the engine that no decoder produces (an invalid coverage).", func(s chitchat.Stats) uint64 { return s.Engine.MessagesRefused }),
			counter("chitchat_node_deltas_unknown_ref_total", "Node deltas naming by ref a node this node does not hold (pushes about nodes not met yet): skipped.", func(s chitchat.Stats) uint64 { return s.Engine.NodeDeltasUnknownRef }),
			counter("chitchat_views_forgotten_total", "Views of a peer's keys emptied and taken afresh, when a delta on top would exceed the key limit.", func(s chitchat.Stats) uint64 { return s.Engine.ViewsForgotten }),
			counter("chitchat_forged_content_total", "Echoes of this node's state holding keys it never wrote at its own versions (refuted).", func(s chitchat.Stats) uint64 { return s.Engine.ForgedContent }),
			counter("chitchat_push_not_forwarded_total", "Plaintext pushes from an address that is no member's: applied, not forwarded.", func(s chitchat.Stats) uint64 { return s.Push.NotForwarded }),
			counter("chitchat_push_misrouted_total", "Pushes whose forwarding duty was meant for an earlier identity at this node's address: applied, not forwarded.", func(s chitchat.Stats) uint64 { return s.Push.Misrouted }),
			counter("chitchat_version_mismatch_total", "Datagrams of another protocol version refused.", func(s chitchat.Stats) uint64 { return s.VersionMismatch }),
			// Push (docs/design/scale.md §7).
			counter("chitchat_push_originated_total", "Pushes of this node's news or notices, per recipient.", func(s chitchat.Stats) uint64 { return s.Push.Originated }),
			counter("chitchat_push_received_total", "Pushes received.", func(s chitchat.Stats) uint64 { return s.Push.Received }),
			counter("chitchat_push_forwarded_total", "Pushes forwarded down the ring, per recipient.", func(s chitchat.Stats) uint64 { return s.Push.Forwarded }),
			counter("chitchat_push_duplicates_total", "Pushes received again, not forwarded again.", func(s chitchat.Stats) uint64 { return s.Push.Duplicates }),
			counter("chitchat_push_rate_limited_total", "Pushes held back or dropped by the rate limit.", func(s chitchat.Stats) uint64 { return s.Push.RateLimited }),
			counter("chitchat_push_notices_alive_total", "Alive notices applied.", func(s chitchat.Stats) uint64 { return s.Push.NoticesAlive }),
			counter("chitchat_push_notices_dead_total", "Death notices that made a node dead here.", func(s chitchat.Stats) uint64 { return s.Push.NoticesDead }),
			// Streams (docs/design/scale.md §4).
			counter("chitchat_stream_exchanges_started_total", "Stream exchanges this node started.", func(s chitchat.Stats) uint64 { return s.Streams.Started }),
			counter("chitchat_stream_exchanges_answered_total", "Stream exchanges this node answered.", func(s chitchat.Stats) uint64 { return s.Streams.Answered }),
			counter("chitchat_stream_exchanges_failed_total", "Stream exchanges that failed.", func(s chitchat.Stats) uint64 { return s.Streams.Failed }),
			counter("chitchat_stream_bytes_total", "Stream frame bytes sent and received.", func(s chitchat.Stats) uint64 { return s.Streams.Bytes }),
			gauge("chitchat_live_nodes", "Live nodes, this one included.", func(s chitchat.Stats) float64 { return float64(s.LiveNodes) }),
			gauge("chitchat_dead_nodes", "Nodes the failure detector deems dead.", func(s chitchat.Stats) float64 { return float64(s.DeadNodes) }),
			gauge("chitchat_left_nodes", "Nodes that left the cluster gracefully, until forgotten.", func(s chitchat.Stats) float64 { return float64(s.LeftNodes) }),
			gauge("chitchat_known_nodes", "Node states held, this one included.", func(s chitchat.Stats) float64 { return float64(s.KnownNodes) }),
			gauge("chitchat_heartbeat", "This node's heartbeat.", func(s chitchat.Stats) float64 { return float64(s.Heartbeat) }),
			gauge("chitchat_key_values", "This node's keys (tombstones excluded).", func(s chitchat.Stats) float64 { return float64(s.KeyValues) }),
		},
	}
}

// droppedReasons are the labels of chitchat_datagrams_dropped_total, each
// with the Stats field it reads.
var droppedReasons = []struct {
	reason string
	value  func(chitchat.Stats) uint64
}{
	{"auth_failure", func(s chitchat.Stats) uint64 { return s.AuthFailures }},
	{"future_counter", func(s chitchat.Stats) uint64 { return s.FutureCounters }},
	{"plaintext_refused", func(s chitchat.Stats) uint64 { return s.PlaintextRefused }},
	{"replay", func(s chitchat.Stats) uint64 { return s.Replays }},
	{"wrong_cluster", func(s chitchat.Stats) uint64 { return s.WrongCluster }},
}

func (c *statsCollector) write(m *metricsText) {
	id := c.srv.Self()
	m.family("chitchat_node_info", gaugeKind, "Identity of this node (always 1).")
	m.sample("chitchat_node_info", 1, "cluster_id", c.srv.ClusterID(), "generation_id", strconv.FormatUint(id.Generation, 10),
		"gossip_advertise_addr", id.Addr.String(), "node_id", id.Name)
	s := c.srv.Stats()
	for _, v := range c.values {
		m.metric(v.name, v.kind, v.help, v.value(s))
	}
	m.family("chitchat_datagrams_dropped_total", counterKind,
		"Datagrams dropped by the keyring: auth_failure (no key opens it), replay, wrong_cluster, plaintext_refused.")
	for _, r := range droppedReasons {
		m.sample("chitchat_datagrams_dropped_total", float64(r.value(s)), "reason", r.reason)
	}
	m.family("chitchat_gossip_round_seconds", summaryKind, "Duration of gossip rounds (bookkeeping and sends).")
	m.sample("chitchat_gossip_round_seconds_sum", s.RoundTime.Seconds())
	m.sample("chitchat_gossip_round_seconds_count", float64(s.Rounds))
}
