package overlay

// A Mesh is one node of the overlay: a WireGuard device (device.go: a
// netstack by default, a TUN or kernel interface), a Pool that announces
// it, a reconcile loop that keeps the device's peers equal to the pool's
// view (reconcile.go), and health probes through the tunnel (probe.go):
//
//	pool view changed ─▶ Build(pool.Peers()) ─▶ DiffPeers(applied, desired)
//	                   ─▶ Device.UpdatePeers(diff) ─▶ applied = desired
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
// Close order: reconcile loop, probes, then pool (and its chitchat node if
// the mesh started it), then device (its interface, addresses, routes and
// UDP socket).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gossipkit/chitchat-go/chitchat"
)

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
