package main

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// metricsHandler serves /metrics from a private registry: the node's
// chitchat metrics, the Go runtime and process collectors, and more (the
// overlay's). A collector that fails is logged and left out of the answer,
// which never quotes the error.
func metricsHandler(srv *chitchat.Server, log *slog.Logger, more ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(more...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg,
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
	})
}

// statsCollector turns Server.Stats into metrics at scrape time: the library
// keeps plain counters and the demo owns the metric
// names.
type statsCollector struct {
	srv  *chitchat.Server
	info *prometheus.Desc
	// counters and gauges, each with the Stats field it reads
	values  []statsMetric
	dropped *prometheus.Desc // datagrams dropped by the keyring, by reason
	round   *prometheus.Desc
}

type statsMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(chitchat.Stats) float64
}

func newStatsCollector(srv *chitchat.Server) *statsCollector {
	counter := func(name, help string, f func(chitchat.Stats) uint64) statsMetric {
		return statsMetric{
			desc:  prometheus.NewDesc(name, help, nil, nil),
			kind:  prometheus.CounterValue,
			value: func(s chitchat.Stats) float64 { return float64(f(s)) },
		}
	}
	gauge := func(name, help string, f func(chitchat.Stats) float64) statsMetric {
		return statsMetric{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, value: f}
	}
	return &statsCollector{
		srv: srv,
		info: prometheus.NewDesc("chitchat_node_info",
			"Identity of this node (always 1).", []string{"cluster_id", "node_id", "generation_id", "gossip_advertise_addr"}, nil),
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
			counter("chitchat_views_forgotten_total", "Views of a peer's keys emptied and taken afresh, when a delta on top would exceed the key limit.", func(s chitchat.Stats) uint64 { return s.Engine.ViewsForgotten }),
			counter("chitchat_forged_content_total", "Echoes of this node's state holding keys it never wrote at its own versions (refuted).", func(s chitchat.Stats) uint64 { return s.Engine.ForgedContent }),
			counter("chitchat_push_not_forwarded_total", "Plaintext pushes from an address that is no member's: applied, not forwarded.", func(s chitchat.Stats) uint64 { return s.Push.NotForwarded }),
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
		dropped: prometheus.NewDesc("chitchat_datagrams_dropped_total",
			"Datagrams dropped by the keyring: auth_failure (no key opens it), replay, wrong_cluster, plaintext_refused.",
			[]string{"reason"}, nil),
		round: prometheus.NewDesc("chitchat_gossip_round_seconds",
			"Duration of gossip rounds (bookkeeping and sends).", nil, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.info
	for _, m := range c.values {
		ch <- m.desc
	}
	ch <- c.dropped
	ch <- c.round
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	id := c.srv.Self()
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
		c.srv.ClusterID(), id.Name, strconv.FormatUint(id.Generation, 10), id.Addr.String())
	s := c.srv.Stats()
	for _, m := range c.values {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
	for reason, n := range map[string]uint64{
		"auth_failure": s.AuthFailures, "replay": s.Replays, "future_counter": s.FutureCounters,
		"wrong_cluster": s.WrongCluster, "plaintext_refused": s.PlaintextRefused,
	} {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstSummary(c.round, s.Rounds, s.RoundTime.Seconds(), nil)
}
