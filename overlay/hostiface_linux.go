package overlay

// A host interface of a mesh (TUN or kernel WireGuard), set up through
// netlink (github.com/vishvananda/netlink: the maintained library that
// Docker, Kubernetes' CNI plugins and Cilium use; shelling out to ip would
// parse text and depend on iproute2):
//
//	link chitchat0, MTU, up
//	address  <overlay IP>/32 (and <overlay IP6>/128, no DAD)
//	routes   <peer allowed IP> dev chitchat0 src <overlay IP of its family>
//	         proto routeProto, one per peer allowed IP, kept equal to the
//	         device's peers by sync
//
// Addresses and routes belong to the link: deleting the link removes them
// all, which is how Close and the take-over of a crashed run's interface
// leave nothing behind.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProto marks the routes a mesh adds (ip route shows "proto 101"), so
// that they are told from anyone else's. 101 is free in
// /etc/iproute2/rt_protos.
const routeProto = netlink.RouteProtocol(101)

// hostIface is a mesh's interface in the host's network stack.
type hostIface struct {
	name  string
	index int
	srcs  []netip.Addr          // the node's overlay addresses
	have  map[netip.Prefix]bool // routes installed
}

// configureLink gives link the node's addresses and MTU, brings it up,
// and returns the interface, with no peer routes yet. Whatever the link
// held before (addresses, routes) is removed first.
func configureLink(link netlink.Link, addrs []netip.Addr, mtu int) (*hostIface, error) {
	name := link.Attrs().Name
	if err := flushLink(link); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return nil, fmt.Errorf("overlay: set MTU %d on %s: %w", mtu, name, err)
	}
	for _, ip := range addrs {
		a := &netlink.Addr{IPNet: prefixIPNet(hostPrefix(ip))}
		if ip.Is6() {
			a.Flags = unix.IFA_F_NODAD // no duplicate detection on a point-to-point tunnel
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return nil, fmt.Errorf("overlay: add address %v to %s: %w", ip, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("overlay: bring %s up: %w", name, err)
	}
	return &hostIface{
		name:  name,
		index: link.Attrs().Index,
		srcs:  slices.Clone(addrs),
		have:  make(map[netip.Prefix]bool),
	}, nil
}

// flushLink removes every address and route of link.
func flushLink(link netlink.Link) error {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("overlay: list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("overlay: remove address %v from %s: %w", a.IPNet, link.Attrs().Name, err)
		}
	}
	rs, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("overlay: list routes of %s: %w", link.Attrs().Name, err)
	}
	for _, r := range rs {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("overlay: remove route %v from %s: %w", r.Dst, link.Attrs().Name, err)
		}
	}
	return nil
}

// sync makes the interface's peer routes exactly want: one route per
// prefix through the interface, from the node's address of its family.
// Routes that fail stay wanted: the next sync (the mesh retries a failed
// update) tries them again.
func (h *hostIface) sync(want []netip.Prefix) error {
	var errs []error
	wanted := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		wanted[p] = true
		if h.have[p] {
			continue
		}
		if err := netlink.RouteReplace(h.route(p)); err != nil {
			errs = append(errs, fmt.Errorf("overlay: route %v via %s: %w", p, h.name, err))
			continue
		}
		h.have[p] = true
	}
	for p := range h.have {
		if wanted[p] {
			continue
		}
		if err := netlink.RouteDel(h.route(p)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("overlay: remove route %v via %s: %w", p, h.name, err))
			continue
		}
		delete(h.have, p)
	}
	return errors.Join(errs...)
}

func (h *hostIface) route(p netip.Prefix) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: h.index,
		Dst:       prefixIPNet(p),
		Scope:     netlink.SCOPE_LINK,
		Protocol:  routeProto,
	}
	for _, src := range h.srcs {
		if src.Is4() == p.Addr().Is4() {
			r.Src = net.IP(src.AsSlice())
			break
		}
	}
	return r
}

// deleteLink deletes the interface named name if it is still the one of
// index (a newer one of the same name is someone else's).
func deleteLink(name string, index int) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("overlay: look up %s: %w", name, err)
	}
	if link.Attrs().Index != index {
		return nil
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("overlay: delete %s: %w", name, err)
	}
	return nil
}

// existingLink returns the interface named name, nil if there is none.
func existingLink(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("overlay: look up interface %s: %w", name, err)
	}
	return link, nil
}
