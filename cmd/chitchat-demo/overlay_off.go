//go:build !overlay

package main

// The default build links no overlay: a node given --overlay is handed over
// to chitchat-demo-overlay (overlay_handoff.go) before it starts, so that
// nothing here runs. The overlay endpoints answer that the overlay is off.

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// overlayLinked: this binary cannot run --overlay itself.
const overlayLinked = false

// overlayMesh stands for overlay.Mesh; there is never one.
type overlayMesh struct{}

func (*overlayMesh) OverlayIP() netip.Addr           { return netip.Addr{} }
func (*overlayMesh) Endpoint() netip.AddrPort        { return netip.AddrPort{} }
func (*overlayMesh) PublicKey() string               { return "" }
func (*overlayMesh) Close() error                    { return nil }
func overlayCollectors(*overlayMesh) []metricsSource { return nil }

var errOverlayNotLinked = errors.New("this chitchat-demo is built without the overlay: " + overlayBuildHint)

func newOverlayMesh(*overlayOptions, netip.AddrPort, *chitchat.Server, *slog.Logger) (*overlayMesh, error) {
	return nil, errOverlayNotLinked
}

// The overlay build checks the key file and the mesh configuration; this
// one hands them over to it.
func checkOverlayKeyFile(string) error                      { return nil }
func validateOverlay(*overlayOptions, netip.AddrPort) error { return nil }

func (a *api) overlayPeers(w minihttp.ResponseWriter, _ *minihttp.Request) {
	writeError(w, minihttp.StatusNotFound, overlayOff)
}

func (a *api) overlayWGQuick(w minihttp.ResponseWriter, _ *minihttp.Request) {
	writeError(w, minihttp.StatusNotFound, overlayOff)
}
