//go:build overlay

package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/overlay"
)

// Each overlay counter is named after the field it reads: every field has
// a value of its own, so that a metric reading the wrong field, or a
// per-peer sample under the wrong peer, shows. The end-to-end test
// (TestOverlayThreeNodes) sees only zeros and cannot tell.
func TestOverlayCollector(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	stats := overlay.MeshStats{
		Pool:              overlay.PoolStats{Peers: 3, Malformed: 5, Conflicts: 7, Quarantined: 2, SelfRestored: 11, EventsDropped: 13},
		Peers:             4,
		Refused:           17,
		Malformed:         19,
		ReconcileFailures: 23,
		ReconcileRetries:  29,
		PeerStats: []overlay.PeerStat{
			{NodeID: 2, OverlayIP: netip.MustParseAddr("10.200.0.2"), LastHandshake: now.Add(-1500 * time.Millisecond),
				RxBytes: 100, TxBytes: 200, ProbeAnswered: true, LastProbeReply: now.Add(-time.Second), ProbeRTT: 3 * time.Millisecond},
			// No handshake, no probe reply yet: no age and no RTT sample.
			{NodeID: 3, OverlayIP: netip.MustParseAddr("10.200.0.3"), RxBytes: 0, TxBytes: 148},
			// On the device, no longer in the view: left out.
			{RxBytes: 1, TxBytes: 1},
		},
	}
	var m metricsText
	newOverlayCollector(func() overlay.MeshStats { return stats }, func() time.Time { return now }).write(&m)
	var got []string
	for line := range strings.Lines(string(m.b)) {
		if !strings.HasPrefix(line, "#") {
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
	}
	want := []string{
		"chitchat_overlay_peers 4",
		"chitchat_overlay_workers 3",
		"chitchat_overlay_quarantined 2",
		"chitchat_overlay_conflicts_total 7",
		"chitchat_overlay_malformed_total 24", // the pool's (did not decode) and the mesh's (did not validate)
		"chitchat_overlay_refused_total 17",
		"chitchat_overlay_reconcile_failures_total 23",
		"chitchat_overlay_reconcile_retries_total 29",
		"chitchat_overlay_self_restored_total 11",
		"chitchat_overlay_events_dropped_total 13",
		`chitchat_overlay_peer_last_handshake_age_seconds{overlay_ip="10.200.0.2",peer="2"} 1.5`,
		`chitchat_overlay_peer_received_bytes_total{overlay_ip="10.200.0.2",peer="2"} 100`,
		`chitchat_overlay_peer_received_bytes_total{overlay_ip="10.200.0.3",peer="3"} 0`,
		`chitchat_overlay_peer_sent_bytes_total{overlay_ip="10.200.0.2",peer="2"} 200`,
		`chitchat_overlay_peer_sent_bytes_total{overlay_ip="10.200.0.3",peer="3"} 148`,
		`chitchat_overlay_peer_probe_answered{overlay_ip="10.200.0.2",peer="2"} 1`,
		`chitchat_overlay_peer_probe_answered{overlay_ip="10.200.0.3",peer="3"} 0`,
		`chitchat_overlay_peer_probe_rtt_seconds{overlay_ip="10.200.0.2",peer="2"} 0.003`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("overlay metrics (-want +got):\n%s", d)
	}
	// Every family has its HELP and TYPE.
	for _, name := range []string{"chitchat_overlay_conflicts_total", peerHandshakeAge, peerProbeRTT} {
		if !strings.Contains(string(m.b), "# HELP "+name+" ") || !strings.Contains(string(m.b), "# TYPE "+name+" ") {
			t.Errorf("no HELP or TYPE for %s:\n%s", name, m.b)
		}
	}
}
