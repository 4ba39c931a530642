package overlay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// newNetstackDevice brings up wireguard-go over a gVisor netstack holding
// the node's overlay addresses.
func newNetstackDevice(cfg MeshConfig, priv PrivateKey, log *slog.Logger) (Device, error) {
	tunDev, tnet, err := netstack.CreateNetTUN(cfg.overlayIPs(), nil, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("overlay: netstack: %w", err)
	}
	d, err := startWGGo(cfg, priv, tunDev, log, nil)
	if err != nil {
		return nil, err
	}
	d.network = netstackNet{tnet}
	return d, nil
}

// startWGGo runs wireguard-go on tunDev with the key and port of cfg,
// brings it up (after up, if set, has brought the interface up) and reads
// back the bound port. On error the device is closed, and tunDev with it.
func startWGGo(cfg MeshConfig, priv PrivateKey, tunDev tun.Device, log *slog.Logger, up func() error) (*wgGoDevice, error) {
	bind := conn.NewDefaultBind()
	if ip := cfg.ListenAddr; ip.IsValid() && !ip.IsUnspecified() {
		bind = newAddrBind(ip.Unmap())
	}
	dev := device.NewDevice(tunDev, bind, deviceLogger(log, cfg.VerboseDevice))
	err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", priv.Hex(), cfg.ListenPort))
	if err == nil && up != nil {
		err = up()
	}
	if err == nil {
		err = dev.Up()
	}
	var get string
	if err == nil {
		get, err = dev.IpcGet()
	}
	var c Config
	if err == nil {
		c, err = ParseUAPI(get)
	}
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("overlay: WireGuard device on port %d: %w", cfg.ListenPort, err)
	}
	return &wgGoDevice{ipc: dev, port: c.ListenPort}, nil
}

func deviceLogger(log *slog.Logger, verbose bool) *device.Logger {
	v := device.DiscardLogf
	if verbose {
		v = func(format string, args ...any) { log.Debug("wireguard: " + fmt.Sprintf(format, args...)) }
	}
	return &device.Logger{
		Verbosef: v,
		Errorf:   func(format string, args ...any) { log.Warn("wireguard: " + fmt.Sprintf(format, args...)) },
	}
}

// netstackNet reaches the overlay through the netstack.
type netstackNet struct{ tnet *netstack.Net }

func (n netstackNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return n.tnet.DialContext(ctx, network, address)
}

func (n netstackNet) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	return n.tnet.ListenTCPAddrPort(ap)
}

func (n netstackNet) ListenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return n.tnet.ListenUDPAddrPort(ap)
}
