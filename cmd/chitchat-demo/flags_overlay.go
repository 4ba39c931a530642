package main

// The WireGuard overlay flags: --overlay and its --overlay_* and --wg_*
// companions. They are parsed in every build; the checks that need the
// overlay package (checkOverlayKeyFile, validateOverlay) run in the overlay
// build only, which a node with --overlay is handed over to
// (overlay_handoff.go) before it uses them.

import (
	"errors"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// parseOverlayFlags returns the overlay options, nil without --overlay.
func parseOverlayFlags(nf *nodeFlags, listen, public netip.AddrPort, bad func(string, ...any)) *overlayOptions {
	if !parseBoolFlag("overlay", nf.overlay, bad) {
		var stray []string
		for _, f := range []struct {
			name string
			v    stringValue
		}{
			{"overlay_node_id", nf.overlayNodeID}, {"overlay_ip", nf.overlayIP}, {"wg_listen_port", nf.wgListenPort},
			{"wg_private_key_file", nf.wgKeyFile}, {"wg_keepalive", nf.wgKeepalive}, {"overlay_tun", nf.overlayTUN},
		} {
			if f.v.set {
				stray = append(stray, "--"+f.name)
			}
		}
		if len(stray) > 0 {
			bad("%s only apply to the overlay: add --overlay, or drop them", strings.Join(stray, ", "))
		}
		return nil
	}
	o := &overlayOptions{keyFile: nf.wgKeyFile.s, listenAddr: listen.Addr()}
	var problems int
	ovBad := func(format string, a ...any) { problems++; bad(format, a...) }
	if !nf.overlayNodeID.set {
		ovBad("--overlay needs --overlay_node_id: a number unique in the cluster, such as 1")
	} else if id, err := strconv.ParseUint(nf.overlayNodeID.s, 10, 64); err != nil {
		ovBad("--overlay_node_id %q: must be a whole number between 0 and %d", nf.overlayNodeID.s, uint64(math.MaxUint64))
	} else {
		o.nodeID = id
	}
	if !nf.overlayIP.set {
		ovBad("--overlay needs --overlay_ip: this node's address inside the overlay, such as 10.200.0.1")
	} else if ips, ok := parseOverlayIPs(nf.overlayIP.s); !ok {
		ovBad("--overlay_ip %q: must be a plain IP address such as 10.200.0.1 (no port, no prefix length), "+
			"or an IPv4 and an IPv6 one separated by a comma, such as 10.200.0.1,fd00:200::1", nf.overlayIP.s)
	} else {
		o.ip = ips[0]
		if len(ips) == 2 {
			o.ip6 = ips[1]
		}
	}
	if nf.overlayTUN.set {
		if nf.overlayTUN.s == "" {
			ovBad("--overlay_tun is empty: name the interface, such as chitchat0")
		}
		o.tun = nf.overlayTUN.s
	}
	if p, err := strconv.ParseUint(nf.wgListenPort.s, 10, 16); err != nil {
		ovBad("--wg_listen_port %q: must be a port between 0 and 65535 (0 picks a free one; default %s)", nf.wgListenPort.s, defaultWGPort)
	} else {
		o.listenPort = int(p)
		// WireGuard binds --listen_addr's IP, where gossip's UDP port is.
		if p != 0 && listen.IsValid() && uint16(p) == listen.Port() {
			ovBad("--wg_listen_port %d is also the gossip port of --listen_addr (UDP): pick another", p)
		}
	}
	if d, err := time.ParseDuration(nf.wgKeepalive.s); err != nil || d < 0 || d%time.Second != 0 || d > 65535*time.Second {
		ovBad("--wg_keepalive %q: must be whole seconds between 0s and 65535s, such as 25s (0 is off)", nf.wgKeepalive.s)
	} else {
		o.keepalive = d
	}
	if nf.wgKeyFile.set && o.keyFile == "" {
		ovBad("--wg_private_key_file is empty: give a path, or leave the flag out for an ephemeral key")
	}
	if o.keyFile != "" {
		if _, err := os.Stat(o.keyFile); err == nil {
			if err := checkOverlayKeyFile(o.keyFile); err != nil {
				ovBad("--wg_private_key_file %s: not a WireGuard private key (want one base64 key, as `wg genkey` writes)", o.keyFile)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			ovBad("--wg_private_key_file %s: %v", o.keyFile, stripPathErr(err))
		} else if _, err := os.Stat(filepath.Dir(o.keyFile)); err != nil {
			ovBad("--wg_private_key_file %s: cannot be created there: %v", o.keyFile, stripPathErr(err))
		}
	}
	if problems == 0 && public.IsValid() {
		// Whatever the overlay package checks beyond the above.
		if err := validateOverlay(o, public); err != nil {
			for line := range strings.SplitSeq(err.Error(), "\n") {
				bad("--overlay: %s", strings.TrimPrefix(line, "overlay: "))
			}
		}
	}
	return o
}

// parseOverlayIPs parses "ip" or "ipv4,ipv6" (either order; the IPv4 one
// comes first in the result).
func parseOverlayIPs(s string) ([]netip.Addr, bool) {
	var ips []netip.Addr
	for f := range strings.SplitSeq(s, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || ip.Unmap().IsUnspecified() || ip.Zone() != "" {
			return nil, false
		}
		ips = append(ips, ip.Unmap())
	}
	switch {
	case len(ips) == 1:
		return ips, true
	case len(ips) == 2 && ips[0].Is4() != ips[1].Is4():
		if ips[0].Is6() {
			ips[0], ips[1] = ips[1], ips[0]
		}
		return ips, true
	}
	return nil, false
}

// stripPathErr keeps the reason of a *fs.PathError ("no such file or
// directory"), the path being in the message already.
func stripPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
