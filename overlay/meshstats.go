package overlay

import (
	"bytes"
	"slices"
)

// MeshStats counts what a mesh refused and how its device fared.
type MeshStats struct {
	// Pool is the pool's counters (its view, quarantined entries).
	Pool PoolStats
	// Peers is the number of peers the device was last configured with.
	Peers int
	// PeerStats is what the device reports per peer, in public key order
	// (empty if the device could not be read).
	PeerStats []PeerStat
	// Refused counts distinct entries refused by the address rules
	// (BuildOptions.OverlayPrefixes, AllowLoopbackEndpoints); an entry is
	// counted again only if it disappears and comes back refused.
	Refused uint64
	// Malformed counts distinct entries that failed PeerInfo.Validate at
	// Build (the pool counts those that did not decode).
	Malformed uint64
	// ReconcileFailures counts failed device updates.
	ReconcileFailures uint64
	// ReconcileRetries counts reconciles made because an earlier one
	// failed (see ReconcileRetryMin).
	ReconcileRetries uint64
}

// Stats returns the mesh's counters and the device's per-peer statistics.
func (m *Mesh) Stats() MeshStats {
	m.reconMu.Lock()
	n := len(m.applied)
	m.reconMu.Unlock()
	st := MeshStats{Pool: m.pool.Stats(), Peers: n, Refused: m.refused.Load(), Malformed: m.malformed.Load(),
		ReconcileFailures: m.failures.Load(), ReconcileRetries: m.retries.Load()}
	get, err := m.dev.IpcGet()
	if err == nil {
		st.PeerStats, err = ParsePeerStats(get)
	}
	if err != nil {
		m.log.Debug("reading the device's peer statistics", "err", err)
		return st
	}
	byKey := make(map[Key]PeerInfo)
	for _, info := range m.pool.Peers() {
		byKey[info.PublicKey] = info
	}
	for i, ps := range st.PeerStats {
		if info, ok := byKey[ps.PublicKey]; ok {
			st.PeerStats[i].NodeID, st.PeerStats[i].OverlayIP = info.NodeID, info.OverlayIP
		}
		if m.probes != nil && st.PeerStats[i].OverlayIP.IsValid() {
			ps := &st.PeerStats[i]
			ps.ProbeAnswered, ps.LastProbeReply, ps.ProbeRTT = m.probes.health(ps.OverlayIP.Unmap())
		}
	}
	slices.SortFunc(st.PeerStats, func(a, b PeerStat) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) })
	return st
}
