package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Default MTUs of a mesh's interface, by the underlay's family (that of
// EndpointAddr), for a 1,500-byte underlay link: room for WireGuard's 60
// bytes of overhead (IPv4, UDP, WireGuard header and tag) plus 20 to spare
// over IPv4, 80 plus 20 over IPv6.
const (
	DefaultMTU  = 1420 // over IPv4 UDP (wg-quick's default)
	DefaultMTU6 = 1400 // over IPv6 UDP
)

// defaultMTU returns the MTU for an underlay address's family.
func defaultMTU(underlay netip.Addr) int {
	if underlay.Unmap().Is6() {
		return DefaultMTU6
	}
	return DefaultMTU
}

// MeshConfig configures a Mesh.
type MeshConfig struct {
	// NodeID is this worker's id in the pool (the key is "worker:<NodeID>").
	NodeID uint64
	// PrivateKey is the device's private key. If zero, PrivateKeyFile is
	// used; if that is empty too, an ephemeral key is generated.
	PrivateKey PrivateKey
	// PrivateKeyFile is a `wg genkey` file. If it does not exist it is
	// created with a new key (mode 0600, atomically: see
	// LoadOrCreateKeyFile), so a restart keeps the identity. A file its
	// group or others may access is used with a warning, as `wg` does.
	PrivateKeyFile string
	// ListenAddr is the IP the WireGuard UDP port is bound to. The zero
	// value binds every interface (wireguard-go's default bind, both
	// families); set it to listen on one address only, such as 127.0.0.1
	// in tests or one interface's address on a multi-homed host. Peers
	// are then reached in that address's family only.
	ListenAddr netip.Addr
	// ListenPort is the WireGuard UDP port. 0 picks a free port, which
	// Endpoint reports.
	ListenPort int
	// OverlayIP is this node's address inside the overlay. Required.
	OverlayIP netip.Addr
	// OverlayIP6 makes the node dual-stack: its IPv6 overlay address, with
	// an IPv4 OverlayIP (announced as overlay_ip6; see PeerInfo). Leave it
	// unset for a single-stack node, IPv4 or IPv6.
	OverlayIP6 netip.Addr
	// EndpointAddr is the IP peers reach the WireGuard port at; it is
	// announced with the bound port as wg_endpoint. Required; not
	// unspecified, link-local, multicast or broadcast, and loopback only
	// with AllowLoopbackEndpoints (peers would refuse it otherwise).
	EndpointAddr netip.Addr
	// OverlayPrefixes are the prefixes every overlay IP, this node's
	// included, must fall in; peers announcing an IP outside them are
	// refused (BuildOptions.OverlayPrefixes). Default
	// DefaultOverlayPrefixes(), the private ranges.
	OverlayPrefixes []netip.Prefix
	// AllowLoopbackEndpoints accepts peers whose WireGuard endpoint is a
	// loopback address, and lets this node announce one: for clusters
	// whose workers all run on this host (local demos, tests). Off by
	// default (BuildOptions.AllowLoopbackEndpoints says why).
	AllowLoopbackEndpoints bool
	// Labels are published with the entry.
	Labels map[string]string
	// Device chooses the WireGuard device: DeviceNetstack (the default: no
	// root, only this process reaches the overlay), DeviceTUN (wireguard-go
	// on a TUN interface: every process of the host reaches it; needs
	// CAP_NET_ADMIN and /dev/net/tun) or DeviceKernel (the kernel's
	// WireGuard, through wgctrl). See device.go.
	Device DeviceKind
	// Interface names the TUN or kernel interface, such as "chitchat0".
	// Required for DeviceTUN and DeviceKernel, unused by a netstack. An
	// interface of that name left by a crashed run is taken over (TUN)
	// or replaced (kernel); one of another kind, or in use, is an error.
	Interface string
	// MTU of the interface. Default: from the underlay's family,
	// DefaultMTU (1,420) if EndpointAddr is IPv4, DefaultMTU6 (1,400) if
	// IPv6.
	MTU int
	// PersistentKeepalive is set on every peer, in whole seconds; 0 is off.
	// Use 25s for nodes behind NAT.
	PersistentKeepalive time.Duration
	// ProbeInterval is the period of the health probes sent through the
	// tunnel to every peer's overlay address (see probe.go). Default
	// DefaultProbeInterval; negative sends none (probes are still
	// answered).
	ProbeInterval time.Duration
	// ProbePort is the UDP port on the overlay address that answers
	// probes, the same on every node. Default DefaultProbePort.
	ProbePort int
	// Logger receives the mesh's, the pool's and wireguard-go's errors.
	// Default: discard.
	Logger *slog.Logger
	// VerboseDevice also sends wireguard-go's verbose log to Logger, at
	// Debug.
	VerboseDevice bool
	// OnReconcile, if set, is called after every reconcile that changed or
	// tried to change the device, with the diff and IpcSet's error. It runs
	// on the reconcile goroutine: it must not block nor call the Mesh.
	OnReconcile func(Diff, error)
}

// Validate reports every problem of c at once. It reads (never writes)
// PrivateKeyFile if it exists. It does not modify c.
func (c MeshConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("overlay: "+format, args...)) }
	if !c.PrivateKey.IsZero() && c.PrivateKeyFile != "" {
		bad("both PrivateKey and PrivateKeyFile are set: choose one")
	}
	if c.PrivateKey.IsZero() && c.PrivateKeyFile != "" {
		if _, err := os.Stat(c.PrivateKeyFile); err == nil {
			if _, err := ReadKeyFile(c.PrivateKeyFile); err != nil {
				errs = append(errs, err)
			}
		} else if errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(filepath.Dir(c.PrivateKeyFile)); err != nil {
				bad("PrivateKeyFile %s cannot be created: %v", c.PrivateKeyFile, err)
			}
		} else {
			bad("PrivateKeyFile: %v", err)
		}
	}
	if ip := c.ListenAddr; ip.IsValid() && (ip.Zone() != "" || ip.IsMulticast()) {
		bad("ListenAddr %v must be a local unicast address without a zone (or unset for every interface)", ip)
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		bad("ListenPort %d is not in 0-65535 (0 picks a free port)", c.ListenPort)
	}
	for _, p := range c.OverlayPrefixes {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			bad("OverlayPrefixes: %v is not a valid IPv4 or IPv6 prefix", p)
		}
	}
	switch ip := c.OverlayIP; {
	case !ip.IsValid():
		bad("OverlayIP is not set")
	case ip.IsUnspecified() || ip.Zone() != "" || ip.Is4In6():
		bad("OverlayIP %v must be a plain unicast IPv4 or IPv6 address", ip)
	default:
		if err := checkOverlayIP(ip, c.OverlayPrefixes); err != nil {
			bad("OverlayIP %v", err)
		}
	}
	switch ip := c.EndpointAddr; {
	case !ip.IsValid():
		bad("EndpointAddr is not set: give the IP peers reach the WireGuard port at")
	case ip.IsUnspecified():
		bad("EndpointAddr %v is unspecified: give an address peers can reach", ip)
	case ip.Unmap().IsLoopback() && !c.AllowLoopbackEndpoints:
		bad("EndpointAddr %v is a loopback address, which peers refuse: set AllowLoopbackEndpoints if every worker runs on this host", ip)
	default:
		if err := checkAddrClass(ip.Unmap(), true); err != nil {
			bad("EndpointAddr %v", err)
		}
	}
	if ip6 := c.OverlayIP6; ip6.IsValid() {
		switch {
		case !ip6.Is6() || ip6.Is4In6() || ip6.Zone() != "":
			bad("OverlayIP6 %v must be a plain IPv6 address", ip6)
		case c.OverlayIP.IsValid() && !c.OverlayIP.Is4():
			bad("OverlayIP6 %v needs an IPv4 OverlayIP (it is %v): a dual-stack node has one address per family", ip6, c.OverlayIP)
		default:
			if err := checkOverlayIP(ip6, c.OverlayPrefixes); err != nil {
				bad("OverlayIP6 %v", err)
			}
		}
	}
	switch c.Device {
	case DeviceNetstack:
		if c.Interface != "" {
			bad("Interface %q is set for a netstack device, which has none: set Device to DeviceTUN or DeviceKernel", c.Interface)
		}
	case DeviceTUN, DeviceKernel:
		if err := checkInterfaceName(c.Interface); err != nil {
			bad("Interface: %v", err)
		}
		if ip := c.ListenAddr; c.Device == DeviceKernel && ip.IsValid() && !ip.IsUnspecified() {
			bad("ListenAddr %v: a kernel WireGuard device listens on every address; leave ListenAddr unset, or use DeviceTUN", ip)
		}
	default:
		bad("Device %v is not DeviceNetstack, DeviceTUN or DeviceKernel", c.Device)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		bad("MTU %d is not in 576-65535 (0 for %d over IPv4, %d over IPv6)", c.MTU, DefaultMTU, DefaultMTU6)
	}
	if (c.OverlayIP.Is6() || c.OverlayIP6.IsValid()) && c.MTU != 0 && c.MTU < 1280 {
		bad("MTU %d is below IPv6's minimum of 1280", c.MTU)
	}
	if c.ProbePort < 0 || c.ProbePort > 65535 {
		bad("ProbePort %d is not in 0-65535 (0 for %d)", c.ProbePort, DefaultProbePort)
	}
	if k := c.PersistentKeepalive; k < 0 || k%time.Second != 0 || k > 65535*time.Second {
		bad("PersistentKeepalive %v must be whole seconds in 0-65535s", k)
	}
	return errors.Join(errs...)
}

func (c MeshConfig) overlayIPs() []netip.Addr {
	if c.OverlayIP6.IsValid() {
		return []netip.Addr{c.OverlayIP, c.OverlayIP6}
	}
	return []netip.Addr{c.OverlayIP}
}
