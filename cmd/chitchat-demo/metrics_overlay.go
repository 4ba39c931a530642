package main

// The overlay's metrics in /metrics (with --overlay): the mesh keeps plain
// counters (overlay.MeshStats) and this collector names them at scrape
// time, as statsCollector does for chitchat.

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gossipkit/chitchat-go/overlay"
)

// overlayCollector turns Mesh.Stats into metrics.
type overlayCollector struct {
	mesh   *overlay.Mesh
	now    func() time.Time
	values []overlayMetric
	// per peer, labelled by worker id and overlay IP
	handshakeAge, rxBytes, txBytes, probeOK, probeRTT *prometheus.Desc
}

type overlayMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(overlay.MeshStats) float64
}

// overlayCollectors returns the collector of mesh, none if mesh is nil
// (no --overlay).
func overlayCollectors(mesh *overlay.Mesh) []prometheus.Collector {
	if mesh == nil {
		return nil
	}
	return []prometheus.Collector{newOverlayCollector(mesh, time.Now)}
}

func newOverlayCollector(mesh *overlay.Mesh, now func() time.Time) *overlayCollector {
	m := func(name, help string, kind prometheus.ValueType, f func(overlay.MeshStats) float64) overlayMetric {
		return overlayMetric{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind, value: f}
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	peerLabels := []string{"peer", "overlay_ip"}
	return &overlayCollector{
		mesh: mesh,
		now:  now,
		values: []overlayMetric{
			m("chitchat_overlay_peers", "WireGuard peers the device is configured with.", gauge,
				func(s overlay.MeshStats) float64 { return float64(s.Peers) }),
			m("chitchat_overlay_workers", "Live workers in the gossip pool's view, this one excluded.", gauge,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.Peers) }),
			m("chitchat_overlay_quarantined", "Entries quarantined now: they claim a worker id, overlay IP or public key an established worker holds.", gauge,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.Quarantined) }),
			m("chitchat_overlay_conflicts_total", "Distinct entries quarantined for claiming what an established worker holds.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.Conflicts) }),
			m("chitchat_overlay_malformed_total", "Distinct entries skipped as malformed.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.Malformed + s.Malformed) }),
			m("chitchat_overlay_refused_total", "Distinct entries refused for their overlay IP or endpoint (outside the overlay prefixes, loopback, link-local, multicast, broadcast).", counter,
				func(s overlay.MeshStats) float64 { return float64(s.Refused) }),
			m("chitchat_overlay_reconcile_failures_total", "Failed WireGuard device updates.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.ReconcileFailures) }),
			m("chitchat_overlay_reconcile_retries_total", "Device updates retried after a failure.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.ReconcileRetries) }),
			m("chitchat_overlay_self_restored_total", "Times this worker's own entry was changed or deleted by someone else, and restored.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.SelfRestored) }),
			m("chitchat_overlay_events_dropped_total", "Topology events dropped because a subscriber was too slow.", counter,
				func(s overlay.MeshStats) float64 { return float64(s.Pool.EventsDropped) }),
		},
		handshakeAge: prometheus.NewDesc("chitchat_overlay_peer_last_handshake_age_seconds",
			"Time since the last completed WireGuard handshake with the peer (absent until the first).", peerLabels, nil),
		rxBytes: prometheus.NewDesc("chitchat_overlay_peer_received_bytes_total",
			"Bytes received from the peer through the tunnel.", peerLabels, nil),
		txBytes: prometheus.NewDesc("chitchat_overlay_peer_sent_bytes_total",
			"Bytes sent to the peer through the tunnel.", peerLabels, nil),
		probeOK: prometheus.NewDesc("chitchat_overlay_peer_probe_answered",
			"1 if the peer answered a health probe through the tunnel since the probe round before the last, else 0.", peerLabels, nil),
		probeRTT: prometheus.NewDesc("chitchat_overlay_peer_probe_rtt_seconds",
			"Round trip of the peer's last answered probe through the tunnel (absent until the first).", peerLabels, nil),
	}
}

func (c *overlayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.values {
		ch <- m.desc
	}
	ch <- c.handshakeAge
	ch <- c.rxBytes
	ch <- c.txBytes
	ch <- c.probeOK
	ch <- c.probeRTT
}

func (c *overlayCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.mesh.Stats()
	for _, m := range c.values {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
	now := c.now()
	for _, p := range s.PeerStats {
		if p.NodeID == 0 && !p.OverlayIP.IsValid() {
			continue // a peer the view no longer lists: gone at the next reconcile
		}
		labels := []string{strconv.FormatUint(p.NodeID, 10), p.OverlayIP.String()}
		if !p.LastHandshake.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.handshakeAge, prometheus.GaugeValue, now.Sub(p.LastHandshake).Seconds(), labels...)
		}
		ch <- prometheus.MustNewConstMetric(c.rxBytes, prometheus.CounterValue, float64(p.RxBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.txBytes, prometheus.CounterValue, float64(p.TxBytes), labels...)
		answered := 0.0
		if p.ProbeAnswered {
			answered = 1
		}
		ch <- prometheus.MustNewConstMetric(c.probeOK, prometheus.GaugeValue, answered, labels...)
		if !p.LastProbeReply.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.probeRTT, prometheus.GaugeValue, p.ProbeRTT.Seconds(), labels...)
		}
	}
}
