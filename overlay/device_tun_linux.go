package overlay

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// newTUNDevice brings up wireguard-go on the TUN interface cfg.Interface,
// with the node's addresses and MTU, and routes added as peers come.
//
// A TUN interface of that name that no process holds (a persistent one,
// or one a crashed run left) is taken over and flushed; one held by a
// running process is an error (the kernel refuses a second owner), and so
// is an interface of another kind. An interface made here disappears when
// its file is closed; one taken over is deleted on Close.
func newTUNDevice(cfg MeshConfig, priv PrivateKey, log *slog.Logger) (Device, error) {
	name := cfg.Interface
	old, err := existingLink(name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		switch old.Type() {
		case "tuntap":
			log.Warn("taking over a TUN interface left by an earlier run", "interface", name)
		case "wireguard":
			// A kernel device of a crashed run in kernel mode.
			log.Warn("replacing a kernel WireGuard interface left by an earlier run", "interface", name)
			if err := netlink.LinkDel(old); err != nil {
				return nil, fmt.Errorf("overlay: delete the stale interface %s: %w", name, err)
			}
		default:
			return nil, fmt.Errorf("overlay: interface %s exists and is a %s, not a TUN interface: choose another name", name, old.Type())
		}
	}
	tunDev, err := tun.CreateTUN(name, cfg.MTU)
	switch {
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("overlay: TUN interface %s is in use by another process: choose another name", name)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return nil, fmt.Errorf("overlay: create TUN interface %s: %w (needs root or CAP_NET_ADMIN)", name, err)
	case err != nil:
		return nil, fmt.Errorf("overlay: create TUN interface %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		tunDev.Close()
		return nil, fmt.Errorf("overlay: look up %s: %w", name, err)
	}
	index := link.Attrs().Index
	var host *hostIface
	// The interface is brought up before the device: wireguard-go follows
	// the interface's state, and would take itself down again if it saw
	// the interface down after Up.
	d, err := startWGGo(cfg, priv, tunDev, log, func() error {
		var err error
		host, err = configureLink(link, cfg.overlayIPs(), cfg.MTU)
		return err
	})
	if err != nil {
		deleteLink(name, index)
		return nil, err
	}
	d.network, d.host = hostNet{}, host
	d.onClose = func() error { return deleteLink(name, index) }
	return d, nil
}
