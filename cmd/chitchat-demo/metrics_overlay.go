//go:build overlay

package main

// The overlay's metrics in /metrics (with --overlay): the mesh keeps plain
// counters (overlay.MeshStats) and this collector names them at scrape
// time, as statsCollector does for chitchat.

import (
	"strconv"
	"time"

	"github.com/gossipkit/chitchat-go/overlay"
)

// overlayCollector turns Mesh.Stats into metrics.
type overlayCollector struct {
	stats  func() overlay.MeshStats // Mesh.Stats (a fixed value in tests)
	now    func() time.Time
	values []overlayMetric
}

type overlayMetric struct {
	name, help string
	kind       metricKind
	value      func(overlay.MeshStats) float64
}

// overlayCollectors returns the metrics of mesh, none if mesh is nil (no
// --overlay).
func overlayCollectors(mesh *overlay.Mesh) []metricsSource {
	if mesh == nil {
		return nil
	}
	return []metricsSource{newOverlayCollector(mesh.Stats, time.Now).write}
}

func newOverlayCollector(stats func() overlay.MeshStats, now func() time.Time) *overlayCollector {
	m := func(name, help string, kind metricKind, f func(overlay.MeshStats) float64) overlayMetric {
		return overlayMetric{name: name, help: help, kind: kind, value: f}
	}
	counter, gauge := counterKind, gaugeKind
	return &overlayCollector{
		stats: stats,
		now:   now,
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
	}
}

// The per-peer families, labelled by worker id and overlay IP.
const (
	peerHandshakeAge = "chitchat_overlay_peer_last_handshake_age_seconds"
	peerRxBytes      = "chitchat_overlay_peer_received_bytes_total"
	peerTxBytes      = "chitchat_overlay_peer_sent_bytes_total"
	peerProbeOK      = "chitchat_overlay_peer_probe_answered"
	peerProbeRTT     = "chitchat_overlay_peer_probe_rtt_seconds"
)

func (c *overlayCollector) write(m *metricsText) {
	s := c.stats()
	for _, v := range c.values {
		m.metric(v.name, v.kind, v.help, v.value(s))
	}
	now := c.now()
	type peerSample struct {
		labels []string
		v      float64
	}
	var age, rx, tx, ok, rtt []peerSample
	for _, p := range s.PeerStats {
		if p.NodeID == 0 && !p.OverlayIP.IsValid() {
			continue // a peer the view no longer lists: gone at the next reconcile
		}
		labels := []string{"overlay_ip", p.OverlayIP.String(), "peer", strconv.FormatUint(p.NodeID, 10)}
		if !p.LastHandshake.IsZero() {
			age = append(age, peerSample{labels, now.Sub(p.LastHandshake).Seconds()})
		}
		rx = append(rx, peerSample{labels, float64(p.RxBytes)})
		tx = append(tx, peerSample{labels, float64(p.TxBytes)})
		answered := 0.0
		if p.ProbeAnswered {
			answered = 1
		}
		ok = append(ok, peerSample{labels, answered})
		if !p.LastProbeReply.IsZero() {
			rtt = append(rtt, peerSample{labels, p.ProbeRTT.Seconds()})
		}
	}
	for _, f := range []struct {
		name, help string
		kind       metricKind
		samples    []peerSample
	}{
		{peerHandshakeAge, "Time since the last completed WireGuard handshake with the peer (absent until the first).", gaugeKind, age},
		{peerRxBytes, "Bytes received from the peer through the tunnel.", counterKind, rx},
		{peerTxBytes, "Bytes sent to the peer through the tunnel.", counterKind, tx},
		{peerProbeOK, "1 if the peer answered a health probe through the tunnel since the probe round before the last, else 0.", gaugeKind, ok},
		{peerProbeRTT, "Round trip of the peer's last answered probe through the tunnel (absent until the first).", gaugeKind, rtt},
	} {
		if len(f.samples) == 0 {
			continue
		}
		m.family(f.name, f.kind, f.help)
		for _, p := range f.samples {
			m.sample(f.name, p.v, p.labels...)
		}
	}
}
