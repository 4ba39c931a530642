package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// ErrNoKernelWireGuard is wrapped by the error of a kernel device on a
// kernel without WireGuard.
var ErrNoKernelWireGuard = errors.New("overlay: this kernel has no WireGuard (load the wireguard module, or use DeviceTUN)")

// kernelDevice is a kernel WireGuard interface, configured through wgctrl
// (generic netlink), with its addresses and routes through netlink.
type kernelDevice struct {
	name   string
	index  int
	client *wgctrl.Client
	port   uint16
	host   *hostIface
	peers  map[Key]Peer
}

// newKernelDevice creates the kernel WireGuard interface cfg.Interface. An
// interface of that name and kind (a crashed run's: a kernel device
// outlives its process) is replaced; one of another kind is an error.
func newKernelDevice(cfg MeshConfig, priv PrivateKey, log *slog.Logger) (Device, error) {
	name := cfg.Interface
	old, err := existingLink(name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		if old.Type() != "wireguard" {
			return nil, fmt.Errorf("overlay: interface %s exists and is a %s, not a WireGuard interface: choose another name", name, old.Type())
		}
		log.Warn("replacing a WireGuard interface left by an earlier run", "interface", name)
		if err := netlink.LinkDel(old); err != nil {
			return nil, fmt.Errorf("overlay: delete the stale interface %s: %w", name, err)
		}
	}
	err = netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: cfg.MTU}})
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		return nil, fmt.Errorf("create %s: %w", name, ErrNoKernelWireGuard)
	case err != nil:
		return nil, fmt.Errorf("overlay: create WireGuard interface %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("overlay: look up %s: %w", name, err)
	}
	d := &kernelDevice{name: name, index: link.Attrs().Index}
	if err := d.start(cfg, priv, link); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *kernelDevice) start(cfg MeshConfig, priv PrivateKey, link netlink.Link) error {
	var err error
	if d.client, err = wgctrl.New(); err != nil {
		return fmt.Errorf("overlay: wgctrl: %w", err)
	}
	key, port := wgtypes.Key(priv), cfg.ListenPort
	if err := d.client.ConfigureDevice(d.name, wgtypes.Config{PrivateKey: &key, ListenPort: &port}); err != nil {
		return fmt.Errorf("overlay: configure %s: %w", d.name, err)
	}
	if d.host, err = configureLink(link, cfg.overlayIPs(), cfg.MTU); err != nil {
		return err
	}
	dev, err := d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("overlay: read %s: %w", d.name, err)
	}
	d.port = uint16(dev.ListenPort)
	return nil
}

func (d *kernelDevice) ListenPort() uint16 { return d.port }

func (d *kernelDevice) SetPrivateKey(k PrivateKey) error {
	key := wgtypes.Key(k)
	return d.client.ConfigureDevice(d.name, wgtypes.Config{PrivateKey: &key})
}

func (d *kernelDevice) UpdatePeers(diff Diff, replace bool) error {
	if err := d.client.ConfigureDevice(d.name, wgtypesConfig(diff, replace)); err != nil {
		return err
	}
	d.peers = applyDiff(d.peers, diff, replace)
	return d.host.sync(allowedIPs(d.peers))
}

func (d *kernelDevice) IpcGet() (string, error) {
	dev, err := d.client.Device(d.name)
	if err != nil {
		return "", err
	}
	return uapiFromWGTypes(dev), nil
}

func (d *kernelDevice) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return hostNet{}.DialContext(ctx, network, address)
}

func (d *kernelDevice) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	return hostNet{}.ListenTCP(ap)
}

func (d *kernelDevice) ListenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return hostNet{}.ListenUDP(ap)
}

// Close deletes the interface (its addresses and routes go with it).
func (d *kernelDevice) Close() error {
	err := deleteLink(d.name, d.index)
	if d.client != nil {
		err = errors.Join(err, d.client.Close())
	}
	return err
}
