package main

// The launcher's overlay: with --overlay after "--", every node runs an
// overlay node, and what must differ between them is derived from the
// base values given: node i gets --overlay_node_id base+i, --overlay_ip
// base+i and --wg_listen_port base+i (0 stays 0: each picks a free port).

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// clusterOverlay holds node 0's overlay values, from which the others'
// derive.
type clusterOverlay struct {
	nodeID uint64
	ip     netip.Addr
	wgPort int // 0: every node picks a free port
}

// perNodeOverlayFlags are the node flags the launcher derives per node.
var perNodeOverlayFlags = []string{"overlay_node_id", "overlay_ip", "wg_listen_port"}

// planOverlay derives the overlay of n nodes from node 0's options (nil
// without --overlay), and reports what cannot be derived: an id, IP or
// port past its range, or WireGuard ports that overlap the gossip ports.
func planOverlay(base *overlayOptions, n int, gossipPorts [2]int, bad func(string, ...any)) *clusterOverlay {
	if base == nil {
		return nil
	}
	p := &clusterOverlay{nodeID: base.nodeID, ip: base.ip, wgPort: base.listenPort}
	last := uint64(n - 1)
	if p.nodeID > math.MaxUint64-last {
		bad("--overlay_node_id %d: node %d would get %d + %d, past the largest id", p.nodeID, n-1, p.nodeID, last)
	}
	if _, ok := p.addrOf(n - 1); !ok {
		bad("--overlay_ip %v: node %d would get %v + %d, past the last address", p.ip, n-1, p.ip, last)
	}
	if p.wgPort != 0 {
		if p.wgPort+n-1 > 65535 {
			bad("--wg_listen_port %d: node %d would get port %d, past 65535", p.wgPort, n-1, p.wgPort+n-1)
		} else if lo, hi := gossipPorts[0], gossipPorts[1]; p.wgPort <= hi && lo <= p.wgPort+n-1 {
			bad("--wg_listen_port %d: the WireGuard ports %d..%d overlap the gossip ports %d..%d: pick another base "+
				"(node i uses base+i)", p.wgPort, p.wgPort, p.wgPort+n-1, lo, hi)
		}
	}
	return p
}

// addrOf is base+i.
func (p *clusterOverlay) addrOf(i int) (netip.Addr, bool) {
	a := p.ip
	for range i {
		if a = a.Next(); !a.IsValid() {
			return a, false
		}
	}
	return a, true
}

// args are node i's overlay flags.
func (p *clusterOverlay) args(i int) []string {
	ip, _ := p.addrOf(i)
	port := 0
	if p.wgPort != 0 {
		port = p.wgPort + i
	}
	return []string{
		"--overlay_node_id", strconv.FormatUint(p.nodeID+uint64(i), 10),
		"--overlay_ip", ip.String(),
		"--wg_listen_port", strconv.Itoa(port),
	}
}

// withoutFlags returns args without the named flags and their values
// (--name v, --name=v, -name v, -name=v). Each of them takes a value.
func withoutFlags(args []string, names []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, hasValue := strings.TrimLeft(a, "-"), false
		if n, _, ok := strings.Cut(name, "="); ok {
			name, hasValue = n, true
		}
		if strings.HasPrefix(a, "-") && slices.Contains(names, name) {
			if !hasValue {
				i++ // the value
			}
			continue
		}
		out = append(out, a)
	}
	return out
}
