//go:build overlay

package main

// The WireGuard overlay (--overlay): an overlay.Mesh over the node's own
// chitchat server. This file and metrics_overlay.go are built only with
// -tags overlay, into chitchat-demo-overlay (overlay_handoff.go): the
// WireGuard device and gVisor's netstack are most of a node's binary, and a
// node without --overlay should not carry them (issue 15). The mesh publishes this node's entry (worker:<id>) with
// the node's other keys, and configures a WireGuard device with every other
// live worker as a peer: userspace over a netstack (this process only), or
// on a TUN interface with --overlay_tun (every process of the host). Two
// read-only endpoints show it, with each peer's health; /metrics counts it
// (metrics_overlay.go) and /ui has a block for it.

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
	"github.com/gossipkit/chitchat-go/overlay"
)

// overlayLinked: this binary can run --overlay itself.
const overlayLinked = true

// overlayMesh is the mesh a node runs with --overlay.
type overlayMesh = overlay.Mesh

// newOverlayMesh starts the overlay of o over srv.
func newOverlayMesh(o *overlayOptions, public netip.AddrPort, srv *chitchat.Server, logger *slog.Logger) (*overlayMesh, error) {
	return overlay.NewMesh(o.meshConfig(public, logger), srv)
}

// checkOverlayKeyFile reports whether the existing file at path holds a
// WireGuard private key.
func checkOverlayKeyFile(path string) error {
	_, err := overlay.ReadKeyFile(path)
	return err
}

// validateOverlay is whatever the overlay package checks of the
// configuration beyond the flags' own checks.
func validateOverlay(o *overlayOptions, public netip.AddrPort) error {
	return o.meshConfig(public, nil).Validate()
}

// meshConfig is the overlay configuration of a node whose gossip address is
// public: peers reach the WireGuard port at the same IP. Loopback
// endpoints are accepted only when the node itself listens on or announces
// a loopback address: a local cluster, where every worker is on this host.
func (o *overlayOptions) meshConfig(public netip.AddrPort, logger *slog.Logger) overlay.MeshConfig {
	cfg := overlay.MeshConfig{
		NodeID:                 o.nodeID,
		PrivateKeyFile:         o.keyFile,
		ListenAddr:             o.listenAddr,
		ListenPort:             o.listenPort,
		OverlayIP:              o.ip,
		OverlayIP6:             o.ip6,
		EndpointAddr:           public.Addr(),
		AllowLoopbackEndpoints: o.listenAddr.Unmap().IsLoopback() || public.Addr().Unmap().IsLoopback(),
		PersistentKeepalive:    o.keepalive,
		Logger:                 logger,
	}
	if o.tun != "" {
		cfg.Device, cfg.Interface = overlay.DeviceTUN, o.tun
	}
	return cfg
}

// overlayPeers serves GET /overlay/peers: the other live workers' entries,
// in node_id order, each in the seed's JSON (zlayer-overlay's PeerInfo)
// plus a "health" object: what the WireGuard device and the probes through
// the tunnel say of the peer.
func (a *api) overlayPeers(w minihttp.ResponseWriter, _ *minihttp.Request) {
	if a.mesh == nil {
		writeError(w, minihttp.StatusNotFound, overlayOff)
		return
	}
	st := a.mesh.Stats()
	byKey := make(map[overlay.Key]overlay.PeerStat, len(st.PeerStats))
	for _, ps := range st.PeerStats {
		byKey[ps.PublicKey] = ps
	}
	now := time.Now()
	docs := []peerDoc{} // [] rather than null
	for _, info := range a.mesh.Pool().Peers() {
		ps, ok := byKey[info.PublicKey]
		docs = append(docs, peerDoc{info, newHealthDoc(ps, ok, now)})
	}
	a.writeIndented(w, jsonContentType, docs)
}

// peerDoc is a PeerInfo in the seed's JSON with "health" added last.
type peerDoc struct {
	info   overlay.PeerInfo
	health healthDoc
}

func (d peerDoc) MarshalJSON() ([]byte, error) {
	info, err := d.info.MarshalJSON()
	if err != nil {
		return nil, err
	}
	health, err := json.Marshal(d.health)
	if err != nil {
		return nil, err
	}
	info = append(info[:len(info)-1], `,"health":`...)
	info = append(info, health...)
	return append(info, '}'), nil
}

// healthDoc is what the device and the probes say of a peer. Times are
// RFC 3339; null when there was none.
type healthDoc struct {
	// Configured: the device has the peer (it may not, while a conflict,
	// a refusal or a reconcile is pending).
	Configured           bool       `json:"configured"`
	LastHandshake        *time.Time `json:"last_handshake"`
	LastHandshakeAgeSecs *float64   `json:"last_handshake_age_seconds"`
	RxBytes              uint64     `json:"rx_bytes"`
	TxBytes              uint64     `json:"tx_bytes"`
	ProbeAnswered        bool       `json:"probe_answered"`
	LastProbeReply       *time.Time `json:"last_probe_reply"`
	ProbeRTTMilliseconds *float64   `json:"probe_rtt_ms"`
}

func newHealthDoc(ps overlay.PeerStat, configured bool, now time.Time) healthDoc {
	h := healthDoc{Configured: configured, RxBytes: ps.RxBytes, TxBytes: ps.TxBytes, ProbeAnswered: ps.ProbeAnswered}
	if t := ps.LastHandshake; !t.IsZero() {
		age := now.Sub(t).Seconds()
		h.LastHandshake, h.LastHandshakeAgeSecs = &t, &age
	}
	if t := ps.LastProbeReply; !t.IsZero() {
		rtt := float64(ps.ProbeRTT) / float64(time.Millisecond)
		h.LastProbeReply, h.ProbeRTTMilliseconds = &t, &rtt
	}
	return h
}

// overlayWGQuick serves GET /overlay/wg-quick: the device as a wg-quick(8)
// file, as last reconciled, with the private key left out.
func (a *api) overlayWGQuick(w minihttp.ResponseWriter, _ *minihttp.Request) {
	if a.mesh == nil {
		writeError(w, minihttp.StatusNotFound, overlayOff)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(overlay.RenderWGQuick(a.mesh.WGConfig(), true)))
}
