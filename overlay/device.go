package overlay

// The WireGuard device under a Mesh. Three implementations, chosen by
// MeshConfig.Device:
//
//	DeviceNetstack  wireguard-go over a gVisor netstack in this process:
//	                no root, no kernel module; only this process reaches
//	                the overlay (Mesh.Dial, Listen). The default.
//	DeviceTUN       wireguard-go over a real TUN interface (root or
//	                CAP_NET_ADMIN, /dev/net/tun): every process on the host
//	                reaches peers by their overlay IPs.
//	DeviceKernel    the kernel's WireGuard, configured through wgctrl
//	                (needs the wireguard module).
//
// The two interface kinds get the node's overlay addresses (a host prefix
// each) and one route per peer allowed IP, through netlink. Every kind is
// reconciled by diffs (UpdatePeers): a joined, updated or departed worker
// changes its peer and its routes, never the rest of the device.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// DeviceKind chooses the WireGuard device of a Mesh.
type DeviceKind uint8

// Device kinds.
const (
	// DeviceNetstack is wireguard-go over an in-process gVisor netstack.
	DeviceNetstack DeviceKind = iota
	// DeviceTUN is wireguard-go over a TUN interface of the host.
	DeviceTUN
	// DeviceKernel is a kernel WireGuard interface configured with wgctrl.
	DeviceKernel
)

func (k DeviceKind) String() string {
	switch k {
	case DeviceNetstack:
		return "netstack"
	case DeviceTUN:
		return "tun"
	case DeviceKernel:
		return "kernel"
	}
	return fmt.Sprintf("DeviceKind(%d)", uint8(k))
}

// Device is a WireGuard device as a Mesh drives it: its peers (and for a
// host interface the routes to them), its key, and the way this process
// reaches the overlay. A Mesh makes one from MeshConfig.Device. Calls of
// UpdatePeers never overlap (the reconcile loop makes them); every other
// method may run concurrently with anything (SetPrivateKey from RotateKey,
// IpcGet from Stats, Dial and Listen from the application).
type Device interface {
	// ListenPort returns the bound WireGuard UDP port.
	ListenPort() uint16
	// SetPrivateKey switches the device to k.
	SetPrivateKey(k PrivateKey) error
	// UpdatePeers applies d to the device's peers and to the routes to
	// their allowed IPs. With replace, the device's peers are unknown (an
	// earlier update failed): it makes them exactly d.Added.
	UpdatePeers(d Diff, replace bool) error
	// IpcGet returns the device's state in UAPI "get" form (ParseUAPI,
	// ParsePeerStats read it).
	IpcGet() (string, error)
	// DialContext connects to an overlay address.
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	// ListenTCP and ListenUDP listen on a local overlay address.
	ListenTCP(ap netip.AddrPort) (net.Listener, error)
	ListenUDP(ap netip.AddrPort) (net.PacketConn, error)
	// Close removes the device, its addresses and routes.
	Close() error
}

// ipcDevice is what a wireguard-go device offers (*device.Device), and a
// seam for tests.
type ipcDevice interface {
	IpcSet(string) error
	IpcGet() (string, error)
	Close()
}

// routes keeps a host interface's routes equal to a set of prefixes.
type routes interface {
	sync(want []netip.Prefix) error
}

// wgGoDevice is a wireguard-go device, over a netstack or a TUN: the UAPI
// drives its peers; host, if set, its routes.
type wgGoDevice struct {
	ipc     ipcDevice
	port    uint16
	network overlayNet
	host    routes       // nil for a netstack
	peers   map[Key]Peer // what the device was told, for the routes
	onClose func() error // after ipc.Close: removes a host interface
}

func (d *wgGoDevice) ListenPort() uint16 { return d.port }

func (d *wgGoDevice) SetPrivateKey(k PrivateKey) error {
	return d.ipc.IpcSet("private_key=" + k.Hex() + "\n")
}

func (d *wgGoDevice) UpdatePeers(diff Diff, replace bool) error {
	body := RenderUAPIDiff(diff)
	if replace {
		body = "replace_peers=true\n" + RenderUAPIDiff(Diff{Added: diff.Added})
	}
	if err := d.ipc.IpcSet(body); err != nil {
		return err
	}
	d.peers = applyDiff(d.peers, diff, replace)
	if d.host == nil {
		return nil
	}
	return d.host.sync(allowedIPs(d.peers))
}

func (d *wgGoDevice) IpcGet() (string, error) { return d.ipc.IpcGet() }

func (d *wgGoDevice) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.network.DialContext(ctx, network, address)
}

func (d *wgGoDevice) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	return d.network.ListenTCP(ap)
}

func (d *wgGoDevice) ListenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return d.network.ListenUDP(ap)
}

func (d *wgGoDevice) Close() error {
	d.ipc.Close()
	if d.onClose != nil {
		return d.onClose()
	}
	return nil
}

// applyDiff returns the peer set after d (replace: d.Added only).
func applyDiff(peers map[Key]Peer, d Diff, replace bool) map[Key]Peer {
	if replace || peers == nil {
		peers = make(map[Key]Peer)
		if replace {
			for _, p := range d.Added {
				peers[p.PublicKey] = p.Clone()
			}
			return peers
		}
	}
	for _, p := range d.Removed {
		delete(peers, p.PublicKey)
	}
	for _, l := range [][]Peer{d.Changed, d.Added} {
		for _, p := range l {
			peers[p.PublicKey] = p.Clone()
		}
	}
	return peers
}

// allowedIPs returns every allowed IP of peers, sorted, without repeats.
func allowedIPs(peers map[Key]Peer) []netip.Prefix {
	var out []netip.Prefix
	for p := range maps.Values(peers) {
		out = append(out, p.AllowedIPs...)
	}
	slices.SortFunc(out, comparePrefixes)
	return slices.Compact(out)
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// overlayNet is how this process reaches the overlay: a netstack's
// sockets, or the host's.
type overlayNet interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	ListenTCP(ap netip.AddrPort) (net.Listener, error)
	ListenUDP(ap netip.AddrPort) (net.PacketConn, error)
}

// hostNet is the host's network: with a TUN or kernel interface, overlay
// addresses are routed like any other.
type hostNet struct{}

func (hostNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (hostNet) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	return net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
}

func (hostNet) ListenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
}

// checkInterfaceName says why name cannot name a network interface
// (Linux's rules: 1 to 15 bytes, no '/', ':' or white space, not "." or
// ".."), or returns nil.
func checkInterfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty: name the interface, such as chitchat0")
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a name", name)
	case strings.ContainsAny(name, "/: \t\n\r\x00"):
		return fmt.Errorf("%q has a '/', ':' or white space", name)
	}
	return nil
}
