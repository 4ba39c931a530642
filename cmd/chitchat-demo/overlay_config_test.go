//go:build overlay

package main

// The overlay build's own checks and configuration: run with
// go test -tags overlay ./cmd/chitchat-demo/ (.ci/run does). The default
// build hands --overlay over to that build (overlay_handoff_test.go).

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/overlay"
)

// The mesh configuration of a node: the endpoint on --public_addr's IP,
// WireGuard bound on --listen_addr's.
func TestOverlayMeshConfig(t *testing.T) {
	o, err := parseNodeFlags([]string{"--listen_addr", "0.0.0.0:7000", "--public_addr=[::1]:7001",
		"--overlay", "--overlay_node_id", "42", "--overlay_ip", "10.200.0.42", "--wg_listen_port", "0", "--wg_keepalive", "25s"})
	if err != nil {
		t.Fatal(err)
	}
	mc := o.overlay.meshConfig(o.public, nil)
	if mc.EndpointAddr != netip.IPv6Loopback() || mc.NodeID != 42 || mc.PersistentKeepalive != 25*time.Second {
		t.Errorf("mesh config %+v: want the endpoint on --public_addr's IP", mc)
	}
	if mc.ListenAddr != netip.IPv4Unspecified() {
		t.Errorf("mesh ListenAddr %v, want --listen_addr's IP 0.0.0.0", mc.ListenAddr)
	}
}

// A --wg_private_key_file that holds no key is refused at start.
func TestOverlayKeyFileChecked(t *testing.T) {
	bad := writeFile(t, t.TempDir(), "bad.wg", "garbage\n")
	_, err := parseNodeFlags([]string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1", "--wg_private_key_file", bad})
	if err == nil || !strings.Contains(err.Error(), "not a WireGuard private key") || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("err = %v, want one problem: not a WireGuard private key", err)
	}
}

// The default build reserves the overlay's keys under its own copy of the
// prefix.
func TestOverlayKeyPrefix(t *testing.T) {
	if overlayKeyPrefix != overlay.KeyPrefix {
		t.Errorf("overlayKeyPrefix = %q, overlay.KeyPrefix = %q", overlayKeyPrefix, overlay.KeyPrefix)
	}
}

// Loopback WireGuard endpoints are accepted only by a node that listens on
// or announces a loopback address (a local cluster); a node on a real
// network refuses them, and refuses to announce overlay IPs outside the
// private ranges.
func TestOverlayLoopbackOptIn(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		wantLoopback bool
		wantErr      string
	}{
		{name: "loopback listen", args: []string{"--listen_addr", "127.0.0.1:7000"}, wantLoopback: true},
		{name: "loopback public", args: []string{"--listen_addr", "0.0.0.0:7000", "--public_addr", "[::1]:7000"}, wantLoopback: true},
		{name: "real network", args: []string{"--listen_addr", "192.0.2.1:7000"}},
		{name: "wildcard with a public address", args: []string{"--listen_addr", "0.0.0.0:7000", "--public_addr", "192.0.2.1:7000"}},
		{name: "public overlay IP", args: []string{"--listen_addr", "192.0.2.1:7000", "--overlay_ip", "8.8.8.8"}, wantErr: "outside the overlay prefixes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1"}, tt.args...)
			o, err := parseNodeFlags(args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.overlay.meshConfig(o.public, nil).AllowLoopbackEndpoints; got != tt.wantLoopback {
				t.Errorf("AllowLoopbackEndpoints = %v, want %v", got, tt.wantLoopback)
			}
		})
	}
}

// --overlay_tun chooses a TUN interface; --overlay_ip takes one address or
// one per family.
func TestOverlayDeviceAndAddressFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      overlay.MeshConfig // the fields checked: Device, Interface, OverlayIP, OverlayIP6
		wantError string
	}{
		{name: "netstack by default", args: []string{"--overlay_ip", "10.200.0.1"},
			want: overlay.MeshConfig{OverlayIP: netip.MustParseAddr("10.200.0.1")}},
		{name: "tun", args: []string{"--overlay_ip", "10.200.0.1", "--overlay_tun", "chitchat0"},
			want: overlay.MeshConfig{Device: overlay.DeviceTUN, Interface: "chitchat0", OverlayIP: netip.MustParseAddr("10.200.0.1")}},
		{name: "dual-stack", args: []string{"--overlay_ip", "10.200.0.1,fd00:200::1"},
			want: overlay.MeshConfig{OverlayIP: netip.MustParseAddr("10.200.0.1"), OverlayIP6: netip.MustParseAddr("fd00:200::1")}},
		{name: "dual-stack, IPv6 first", args: []string{"--overlay_ip", "fd00:200::1, 10.200.0.1"},
			want: overlay.MeshConfig{OverlayIP: netip.MustParseAddr("10.200.0.1"), OverlayIP6: netip.MustParseAddr("fd00:200::1")}},
		{name: "IPv6 only", args: []string{"--overlay_ip", "fd00:200::1"},
			want: overlay.MeshConfig{OverlayIP: netip.MustParseAddr("fd00:200::1")}},
		{name: "two IPv4", args: []string{"--overlay_ip", "10.200.0.1,10.200.0.2"}, wantError: "one separated by a comma"},
		{name: "three", args: []string{"--overlay_ip", "10.200.0.1,fd00::1,fd00::2"}, wantError: "--overlay_ip"},
		{name: "empty tun", args: []string{"--overlay_ip", "10.200.0.1", "--overlay_tun", ""}, wantError: "--overlay_tun is empty"},
		{name: "tun name too long", args: []string{"--overlay_ip", "10.200.0.1", "--overlay_tun", "a-very-long-name0"}, wantError: "longer than 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseNodeFlags(append([]string{"--overlay", "--overlay_node_id", "1"}, tt.args...))
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mc := o.overlay.meshConfig(o.public, nil)
			got := overlay.MeshConfig{Device: mc.Device, Interface: mc.Interface, OverlayIP: mc.OverlayIP, OverlayIP6: mc.OverlayIP6}
			if got.Device != tt.want.Device || got.Interface != tt.want.Interface || got.OverlayIP != tt.want.OverlayIP || got.OverlayIP6 != tt.want.OverlayIP6 {
				t.Errorf("mesh config %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseNodeFlags([]string{"--overlay_tun", "chitchat0"}); err == nil || !strings.Contains(err.Error(), "--overlay_tun only apply to the overlay") {
		t.Errorf("--overlay_tun without --overlay: err = %v", err)
	}
}
