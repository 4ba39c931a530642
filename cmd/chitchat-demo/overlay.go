package main

// The WireGuard overlay (--overlay): an overlay.Mesh over the node's own
// chitchat server. The mesh publishes this node's entry (worker:<id>) with
// the node's other keys, and configures a userspace WireGuard device with
// every other live worker as a peer. Two read-only endpoints show it.

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/gossipkit/chitchat-go/overlay"
)

// meshConfig is the overlay configuration of a node whose gossip address is
// public: peers reach the WireGuard port at the same IP.
func (o *overlayOptions) meshConfig(public netip.AddrPort, logger *slog.Logger) overlay.MeshConfig {
	return overlay.MeshConfig{
		NodeID:              o.nodeID,
		PrivateKeyFile:      o.keyFile,
		ListenAddr:          o.listenAddr,
		ListenPort:          o.listenPort,
		OverlayIP:           o.ip,
		EndpointAddr:        public.Addr(),
		PersistentKeepalive: o.keepalive,
		Logger:              logger,
	}
}

// overlayOff answers the overlay endpoints of a node started without
// --overlay.
const overlayOff = "the WireGuard overlay is off on this node: start it with " +
	"--overlay --overlay_node_id N --overlay_ip 10.200.0.N (and --wg_listen_port, 51820 by default)"

// overlayPeers serves GET /overlay/peers: the other live workers' entries,
// in node_id order, each in the seed's JSON (zlayer-overlay's PeerInfo).
func (a *api) overlayPeers(w http.ResponseWriter, _ *http.Request) {
	if a.mesh == nil {
		writeError(w, http.StatusNotFound, overlayOff)
		return
	}
	peers := a.mesh.Pool().Peers()
	if peers == nil {
		peers = []overlay.PeerInfo{} // [] rather than null
	}
	a.writeIndented(w, jsonContentType, peers)
}

// overlayWGQuick serves GET /overlay/wg-quick: the device as a wg-quick(8)
// file, as last reconciled, with the private key left out.
func (a *api) overlayWGQuick(w http.ResponseWriter, _ *http.Request) {
	if a.mesh == nil {
		writeError(w, http.StatusNotFound, overlayOff)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(overlay.RenderWGQuick(a.mesh.WGConfig(), true)))
}
