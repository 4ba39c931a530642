package overlay

// A Mesh is one node of the overlay: a userspace WireGuard device
// (wireguard-go over a gVisor netstack TUN, so no root and no kernel
// module), a Pool that announces it, and a reconcile loop that keeps the
// device's peers equal to the pool's view:
//
//	pool view changed ─▶ Build(pool.Peers()) ─▶ DiffPeers(applied, desired)
//	                   ─▶ IpcSet(RenderUAPIDiff(diff)) ─▶ applied = desired
//
// The device is reconciled, never rebuilt: an unchanged peer keeps its
// session. If an IpcSet fails, the next reconcile replaces the whole peer
// set (replace_peers=true), and it comes without waiting for a change:
// retries back off from ReconcileRetryMin to ReconcileRetryMax until the
// device matches.
//
// Locking: keyMu guards the private key and serializes rotations; reconMu
// guards what the device was last told (applied, resync) and is held for a
// whole reconcile, so reconciles never interleave.
//
// Close order: reconcile loop, then pool (and its chitchat node if the
// mesh started it), then device (its TUN, netstack and UDP socket).

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
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

// Mesh is a running overlay node. Its methods are safe for concurrent use.
type Mesh struct {
	cfg      MeshConfig
	log      *slog.Logger
	dev      Device
	endpoint netip.AddrPort
	pool     *Pool

	stopWatch func()
	kick      chan struct{} // capacity 1: a reconcile is asked for
	probes    *prober       // nil until started
	stopProbe context.CancelFunc
	probeWG   sync.WaitGroup
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	keyMu sync.Mutex // guards priv; held across a rotation
	priv  PrivateKey

	reconMu sync.Mutex // guards the fields below; held for a whole reconcile
	applied []Peer     // what the device was last told, in Build order
	resync  bool       // the device's peers are unknown: replace them all
	skipped map[skipKey]struct{}

	refused, malformed atomic.Uint64
	failures, retries  atomic.Uint64
}

// StartMesh brings up the device, then starts a pool (and its chitchat
// node) that announces it, then keeps the device's peers reconciled.
func StartMesh(ctx context.Context, cfg MeshConfig, gossip GossipConfig) (*Mesh, error) {
	if err := errors.Join(cfg.Validate(), gossip.Validate()); err != nil {
		return nil, err
	}
	if gossip.Logger == nil {
		gossip.Logger = cfg.Logger
	}
	return startMesh(cfg, func(self PeerInfo) (*Pool, error) { return StartPool(ctx, gossip, self) })
}

// NewMesh is StartMesh over an existing chitchat node (see NewPool): Close
// stops the mesh and its pool but not srv.
func NewMesh(cfg MeshConfig, srv *chitchat.Server) (*Mesh, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return startMesh(cfg, func(self PeerInfo) (*Pool, error) {
		return NewPool(srv, self, PoolOptions{Logger: cfg.Logger})
	})
}

func startMesh(cfg MeshConfig, pool func(PeerInfo) (*Pool, error)) (*Mesh, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.MTU = cmp.Or(cfg.MTU, defaultMTU(cfg.EndpointAddr))
	m := &Mesh{cfg: cfg, log: cfg.Logger.With("overlay_node", cfg.NodeID)}
	priv, err := m.privateKey()
	if err != nil {
		return nil, err
	}
	m.priv = priv
	if err := m.startDevice(); err != nil {
		return nil, err
	}
	if err := m.startProbes(); err != nil {
		m.dev.Close()
		return nil, err
	}
	self := PeerInfo{
		NodeID:     cfg.NodeID,
		PublicKey:  priv.PublicKey(),
		Endpoint:   m.endpoint,
		OverlayIP:  cfg.OverlayIP,
		OverlayIP6: cfg.OverlayIP6,
		Labels:     cfg.Labels,
	}
	if m.pool, err = pool(self); err != nil {
		m.stopProbes()
		m.dev.Close()
		return nil, err
	}
	m.startReconciling()
	m.log.Info("overlay mesh up", "overlay_ip", cfg.OverlayIP, "endpoint", m.endpoint, "public_key", self.PublicKey)
	return m, nil
}

func (m *Mesh) privateKey() (PrivateKey, error) {
	return loadPrivateKey(m.cfg, m.log)
}

// loadPrivateKey returns the configured key, the key file's (created if
// missing; a warning if others may read it) or an ephemeral one.
func loadPrivateKey(cfg MeshConfig, log *slog.Logger) (PrivateKey, error) {
	switch {
	case !cfg.PrivateKey.IsZero():
		return cfg.PrivateKey, nil
	case cfg.PrivateKeyFile != "":
		k, err := LoadOrCreateKeyFile(cfg.PrivateKeyFile)
		if err != nil {
			return PrivateKey{}, err
		}
		if perm, open, err := KeyFileTooOpen(cfg.PrivateKeyFile); err == nil && open {
			log.Warn("WireGuard private key file is accessible to its group or others: chmod 600 it",
				"path", cfg.PrivateKeyFile, "mode", fmt.Sprintf("%#o", perm))
		}
		return k, nil
	}
	log.Info("no WireGuard key configured: using an ephemeral key")
	return GeneratePrivateKey()
}

// startDevice brings up the device MeshConfig.Device names.
func (m *Mesh) startDevice() error {
	dev, err := newDevice(m.cfg, m.priv, m.log)
	if err != nil {
		return err
	}
	m.dev = dev
	m.endpoint = netip.AddrPortFrom(m.cfg.EndpointAddr, dev.ListenPort())
	return nil
}

// newDevice makes the device of cfg.Device.
func newDevice(cfg MeshConfig, priv PrivateKey, log *slog.Logger) (Device, error) {
	switch cfg.Device {
	case DeviceTUN:
		return newTUNDevice(cfg, priv, log)
	case DeviceKernel:
		return newKernelDevice(cfg, priv, log)
	}
	return newNetstackDevice(cfg, priv, log)
}

// Reconcile retries: a failed device update is retried after
// ReconcileRetryMin, then after twice the previous wait up to
// ReconcileRetryMax, until one succeeds, whether or not the pool changes
// meanwhile (a change triggers an attempt at once, and the backoff goes
// on until a success).
const (
	ReconcileRetryMin = time.Second
	ReconcileRetryMax = 30 * time.Second
)

// startReconciling starts the reconcile loop: a first reconcile at once,
// then one after every change of the pool's view, every kick, and every
// retry after a failure.
func (m *Mesh) startReconciling() {
	changes, stop := m.pool.watchChanges()
	m.stopWatch = stop
	m.kick = make(chan struct{}, 1)
	m.wg.Go(func() {
		var (
			retry   *time.Timer
			retryC  <-chan time.Time
			backoff time.Duration
		)
		defer func() {
			if retry != nil {
				retry.Stop()
			}
		}()
		for {
			select {
			case _, ok := <-changes:
				if !ok {
					return
				}
			case <-m.kick:
			case <-retryC:
				m.retries.Add(1)
			}
			if err := m.reconcile(); err == nil {
				backoff, retryC = 0, nil
				if retry != nil {
					retry.Stop()
				}
				continue
			}
			backoff = min(max(2*backoff, ReconcileRetryMin), ReconcileRetryMax)
			if retry == nil {
				retry = time.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			retryC = retry.C
		}
	})
}

// kickReconcile asks the reconcile loop for a reconcile, without waiting.
func (m *Mesh) kickReconcile() {
	select {
	case m.kick <- struct{}{}:
	default: // one is due already
	}
}

// reconcile brings the device's peers to the pool's view. It returns the
// device's error, nil if the device matches.
func (m *Mesh) reconcile() error {
	m.reconMu.Lock()
	defer m.reconMu.Unlock()
	priv := m.currentKey()
	desired, skipped := Build(m.pool.Peers(), BuildOptions{
		SelfPublicKey:          priv.PublicKey(),
		SelfOverlayIP:          m.cfg.OverlayIP,
		SelfOverlayIP6:         m.cfg.OverlayIP6,
		PersistentKeepalive:    m.cfg.PersistentKeepalive,
		OverlayPrefixes:        m.cfg.OverlayPrefixes,
		AllowLoopbackEndpoints: m.cfg.AllowLoopbackEndpoints,
	})
	m.report(skipped)
	d := DiffPeers(m.applied, desired)
	if d.Empty() && !m.resync {
		return nil
	}
	update := d
	if m.resync {
		update = Diff{Added: desired}
	}
	err := m.dev.UpdatePeers(update, m.resync)
	if err != nil {
		m.resync = true
		m.failures.Add(1)
		m.log.Warn("overlay device reconcile failed; retrying with every peer", "diff", d, "err", err)
	} else {
		m.applied, m.resync = desired, false
		m.log.Info("overlay device reconciled", "diff", d, "peers", len(desired))
	}
	if m.cfg.OnReconcile != nil {
		m.cfg.OnReconcile(d, err)
	}
	return err
}

// report logs and counts each entry Build skipped, the first time it is
// skipped for that reason. Called with reconMu held.
func (m *Mesh) report(skipped []Skipped) {
	seen := make(map[skipKey]struct{}, len(skipped))
	for _, s := range skipped {
		k := skipKey{s.Key, s.Reason}
		seen[k] = struct{}{}
		if _, old := m.skipped[k]; old {
			continue
		}
		switch s.Reason {
		case SkipRefused:
			m.refused.Add(1)
			m.log.Warn("overlay peer refused", "peer", s.NodeID, "err", s.Err)
		case SkipMalformed:
			m.malformed.Add(1)
			m.log.Warn("overlay peer malformed", "peer", s.NodeID, "err", s.Err)
		default:
			m.log.Info("overlay peer not configured", "peer", s.NodeID, "reason", s.Reason, "err", s.Err)
		}
	}
	m.skipped = seen
}

// skipKey identifies a skipped entry across reconciles.
type skipKey struct {
	key    string
	reason SkipReason
}

func (m *Mesh) currentKey() PrivateKey {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return m.priv
}

// RotateKey switches the device to priv, announces the new public key and
// reconciles. Sessions under the old key end; peers reach the node again
// once they have the new entry (one gossip exchange) and handshake.
func (m *Mesh) RotateKey(priv PrivateKey) error {
	if priv.IsZero() {
		return errors.New("overlay: RotateKey: zero key")
	}
	m.keyMu.Lock()
	if err := m.dev.SetPrivateKey(priv); err != nil {
		m.keyMu.Unlock()
		return fmt.Errorf("overlay: set private key: %w", err)
	}
	m.priv = priv
	m.keyMu.Unlock()

	self := m.pool.Self()
	self.PublicKey = priv.PublicKey()
	if err := m.pool.AnnounceSelf(self); err != nil {
		return err
	}
	m.log.Info("WireGuard key rotated", "public_key", self.PublicKey)
	m.kickReconcile() // a peer may have had the new key
	return nil
}

// Dial connects to address through the overlay (netstack's DialContext):
// network is "tcp", "udp" (or their 4/6 forms), address an overlay
// "ip:port".
func (m *Mesh) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return m.dev.DialContext(ctx, network, address)
}

// Listen listens for TCP connections on the overlay address. address is
// ":port" or "<overlay ip>:port" (an unspecified IP means the overlay
// address); network is "tcp", "tcp4" or "tcp6".
func (m *Mesh) Listen(network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("overlay: Listen: network %q is not tcp (use ListenPacket for udp)", network)
	}
	ap, err := m.localAddr(address)
	if err != nil {
		return nil, err
	}
	return m.dev.ListenTCP(ap)
}

// ListenPacket is Listen for UDP ("udp", "udp4", "udp6").
func (m *Mesh) ListenPacket(network, address string) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("overlay: ListenPacket: network %q is not udp", network)
	}
	ap, err := m.localAddr(address)
	if err != nil {
		return nil, err
	}
	return m.dev.ListenUDP(ap)
}

func (m *Mesh) localAddr(address string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("overlay: listen address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("overlay: listen address %q: bad port", address)
	}
	ip := m.cfg.OverlayIP
	if host != "" {
		h, err := netip.ParseAddr(host)
		switch {
		case err == nil && h.IsUnspecified() && h.Is6() && m.cfg.OverlayIP6.IsValid():
			ip = m.cfg.OverlayIP6
		case err == nil && h.IsUnspecified():
		case err == nil && slices.Contains(m.overlayIPs(), h):
			ip = h
		default:
			return netip.AddrPort{}, fmt.Errorf("overlay: listen address %q: the local addresses are %v", address, m.overlayIPs())
		}
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// String describes the mesh for logs, without its private key.
func (m *Mesh) String() string {
	return fmt.Sprintf("overlay.Mesh(node %d, %v, endpoint %v, public key %v)", m.cfg.NodeID, m.cfg.OverlayIP, m.endpoint, m.PublicKey())
}

// Format prints String for every verb: the struct holds the private key
// in unexported fields, which fmt would otherwise print raw with %+v.
func (m *Mesh) Format(f fmt.State, _ rune) { f.Write([]byte(m.String())) }

// LogValue logs the mesh as String does.
func (m *Mesh) LogValue() slog.Value { return slog.StringValue(m.String()) }

// OverlayIP returns the node's overlay address.
func (m *Mesh) OverlayIP() netip.Addr { return m.cfg.OverlayIP }

// overlayIPs returns the node's overlay addresses, one per family.
func (m *Mesh) overlayIPs() []netip.Addr { return m.cfg.overlayIPs() }

func (c MeshConfig) overlayIPs() []netip.Addr {
	if c.OverlayIP6.IsValid() {
		return []netip.Addr{c.OverlayIP, c.OverlayIP6}
	}
	return []netip.Addr{c.OverlayIP}
}

// OverlayIPs returns the node's overlay addresses: OverlayIP, then
// OverlayIP6 if the node is dual-stack.
func (m *Mesh) OverlayIPs() []netip.Addr { return m.overlayIPs() }

// Endpoint returns the announced WireGuard endpoint (EndpointAddr and the
// bound port).
func (m *Mesh) Endpoint() netip.AddrPort { return m.endpoint }

// PublicKey returns the device's current public key.
func (m *Mesh) PublicKey() Key { return m.currentKey().PublicKey() }

// Pool returns the mesh's gossip pool.
func (m *Mesh) Pool() *Pool { return m.pool }

// Peers returns the peers the device was last configured with.
func (m *Mesh) Peers() []Peer {
	m.reconMu.Lock()
	defer m.reconMu.Unlock()
	return clonePeers(m.applied)
}

// WGConfig returns the device's configuration as a Config, for
// RenderWGQuick or RenderUAPI: key, port, overlay address, MTU and the
// applied peers.
func (m *Mesh) WGConfig() Config {
	m.reconMu.Lock()
	peers := clonePeers(m.applied)
	m.reconMu.Unlock()
	return Config{
		PrivateKey: m.currentKey(),
		ListenPort: m.endpoint.Port(),
		Addresses:  hostPrefixes(m.overlayIPs()),
		MTU:        m.cfg.MTU,
		Peers:      peers,
	}
}

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

// IpcGet returns the device's UAPI "get" output (ParseUAPI reads it).
func (m *Mesh) IpcGet() (string, error) { return m.dev.IpcGet() }

// Close stops reconciling, closes the pool (and the chitchat node if
// StartMesh started it), then the device. It returns the pool's error and
// is idempotent.
func (m *Mesh) Close() error {
	m.closeOnce.Do(func() {
		m.stopWatch()
		m.wg.Wait()
		m.stopProbes()
		m.closeErr = errors.Join(m.pool.Close(), m.dev.Close())
	})
	return m.closeErr
}
