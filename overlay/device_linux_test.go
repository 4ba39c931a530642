//go:build linux

package overlay

// The host devices (TUN and kernel) need root and change the network
// configuration, so they run in a network namespace of their own: the
// test re-runs this test binary under `ip netns exec` in a namespace it
// creates and deletes; the binary then runs TestHostDevicesInNamespace
// only. Nothing touches the host's own interfaces.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

const inNamespaceEnv = "OVERLAY_TEST_IN_NETNS"

func TestHostDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and interfaces (CI runs as root)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun for TUN interfaces: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command to create a network namespace (Debian: apt-get install iproute2)")
	}
	ns := fmt.Sprintf("cct-ovl-%d-%04x", os.Getpid(), rand.IntN(1<<16))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run", "^TestHostDevicesInNamespace$", "-test.count", "1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), inNamespaceEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("TestHostDevicesInNamespace failed: %v", err)
	}
	if !bytes.Contains(out, []byte("PASS")) {
		t.Fatal("TestHostDevicesInNamespace did not run")
	}
}

func TestHostDevicesInNamespace(t *testing.T) {
	if os.Getenv(inNamespaceEnv) != "1" {
		t.Skip("run by TestHostDevices, in a network namespace of its own")
	}
	t.Run("tun", func(t *testing.T) { testHostDevice(t, DeviceTUN, "cct-tun0") })
	t.Run("kernel", func(t *testing.T) {
		// Probe first: the test is about the device, not the probe.
		err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "cct-probe"}})
		if err != nil {
			t.Skipf("no kernel WireGuard here (%v): the kernel device is tested where the wireguard module exists", err)
		}
		netlink.LinkDel(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "cct-probe"}})
		testHostDevice(t, DeviceKernel, "cct-wg0")
	})
	t.Run("tun left by a crash is taken over", testTUNTakeOver)
	t.Run("tun in use", func(t *testing.T) {
		a, err := newTUNDevice(hostDeviceConfig(DeviceTUN, "cct-busy"), testPrivateKey(1), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		_, err = newTUNDevice(hostDeviceConfig(DeviceTUN, "cct-busy"), testPrivateKey(2), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Errorf("second TUN device on the same interface: err = %v, want \"in use\"", err)
		}
		if _, err := netlink.LinkByName("cct-busy"); err != nil {
			t.Errorf("the failed attempt removed the first device's interface: %v", err)
		}
	})
	t.Run("name of another kind of interface", func(t *testing.T) {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cct-bridge"}}); err != nil {
			t.Skipf("no bridge interfaces here: %v", err)
		}
		defer netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cct-bridge"}})
		for _, kind := range []DeviceKind{DeviceTUN, DeviceKernel} {
			_, err := newDevice(hostDeviceConfig(kind, "cct-bridge"), testPrivateKey(1), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), "is a bridge") {
				t.Errorf("%v device on a bridge: err = %v, want a refusal", kind, err)
			}
		}
	})
}

func hostDeviceConfig(kind DeviceKind, name string) MeshConfig {
	cfg := MeshConfig{
		NodeID:       1,
		Device:       kind,
		Interface:    name,
		OverlayIP:    netip.MustParseAddr("100.64.0.1"),
		OverlayIP6:   netip.MustParseAddr("fd00::1"),
		EndpointAddr: loopback,
		MTU:          DefaultMTU,
	}
	if kind == DeviceTUN {
		cfg.ListenAddr = loopback
	}
	return cfg
}

// testHostDevice: the interface has the node's addresses and MTU, is up,
// and has one route per peer allowed IP, following every diff; Close
// leaves nothing.
func testHostDevice(t *testing.T, kind DeviceKind, name string) {
	dev, err := newDevice(hostDeviceConfig(kind, name), testPrivateKey(1), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			dev.Close()
		}
	}()
	if dev.ListenPort() == 0 {
		t.Error("ListenPort() = 0")
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if a := link.Attrs(); a.MTU != DefaultMTU || a.Flags&(1<<0) == 0 {
		t.Errorf("%s: MTU %d, flags %v; want MTU %d and up", name, a.MTU, a.Flags, DefaultMTU)
	}
	if diff := cmp.Diff([]string{"100.64.0.1/32", "fd00::1/128"}, linkAddrs(t, link)); diff != "" {
		t.Errorf("addresses mismatch (-want +got):\n%s", diff)
	}

	peer := func(n uint64, prefixes ...string) Peer {
		p := Peer{PublicKey: testInfo(n).PublicKey, Endpoint: testInfo(n).Endpoint}
		for _, s := range prefixes {
			p.AllowedIPs = append(p.AllowedIPs, netip.MustParsePrefix(s))
		}
		return p
	}
	steps := []struct {
		name       string
		diff       Diff
		replace    bool
		wantRoutes []string
		wantPeers  int
	}{
		{"two peers join", Diff{Added: []Peer{peer(2, "100.64.0.2/32", "fd00::2/128"), peer(3, "100.64.0.3/32")}}, false,
			[]string{"100.64.0.2/32 src 100.64.0.1", "100.64.0.3/32 src 100.64.0.1", "fd00::2/128 src fd00::1"}, 2},
		{"one leaves, one moves", Diff{Removed: []Peer{peer(3)}, Changed: []Peer{peer(2, "100.64.0.22/32")}}, false,
			[]string{"100.64.0.22/32 src 100.64.0.1"}, 1},
		{"replace all", Diff{Added: []Peer{peer(4, "100.64.0.4/32")}}, true,
			[]string{"100.64.0.4/32 src 100.64.0.1"}, 1},
	}
	for _, st := range steps {
		if err := dev.UpdatePeers(st.diff, st.replace); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.wantRoutes, linkRoutes(t, link)); diff != "" {
			t.Errorf("%s: routes mismatch (-want +got):\n%s", st.name, diff)
		}
		get, err := dev.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		if c, err := ParseUAPI(get); err != nil || len(c.Peers) != st.wantPeers {
			t.Errorf("%s: device peers %+v (%v), want %d", st.name, c.Peers, err, st.wantPeers)
		}
	}
	if err := dev.SetPrivateKey(testPrivateKey(9)); err != nil {
		t.Errorf("SetPrivateKey: %v", err)
	}
	closed = true
	if err := dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("%s still exists after Close", name)
	}
	if rs := overlayRoutes(t); len(rs) != 0 {
		t.Errorf("routes left after Close: %v", rs)
	}
}

// testTUNTakeOver: a persistent TUN interface with stale addresses and
// routes (what a crash of a run on a persistent interface leaves) is taken
// over and flushed, and deleted on Close.
func testTUNTakeOver(t *testing.T) {
	const name = "cct-stale"
	for _, args := range [][]string{
		{"tuntap", "add", name, "mode", "tun"},
		{"addr", "add", "100.64.9.9/32", "dev", name},
		{"link", "set", name, "up"},
		{"route", "add", "100.64.9.10/32", "dev", name},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	dev, err := newTUNDevice(hostDeviceConfig(DeviceTUN, name), testPrivateKey(1), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"100.64.0.1/32", "fd00::1/128"}, linkAddrs(t, link)); diff != "" {
		t.Errorf("addresses after the take-over (-want +got):\n%s", diff)
	}
	if rs := linkRoutes(t, link); len(rs) != 0 {
		t.Errorf("stale routes kept: %v", rs)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("the persistent %s still exists after Close", name)
	}
}

// linkAddrs returns the global addresses of link, sorted.
func linkAddrs(t *testing.T, link netlink.Link) []string {
	t.Helper()
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			out = append(out, a.IPNet.String())
		}
	}
	slices.Sort(out)
	return out
}

// linkRoutes returns link's routes to overlay addresses as "dst src ip".
func linkRoutes(t *testing.T, link netlink.Link) []string {
	t.Helper()
	rs, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Dst == nil || r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast() || r.Type != 1 /* unicast */ {
			continue
		}
		if p, _ := netip.AddrFromSlice(r.Dst.IP); p.Unmap() == netip.MustParseAddr("fd00::1") || p.Unmap() == netip.MustParseAddr("100.64.0.1") {
			continue // the kernel's route to our own address
		}
		out = append(out, fmt.Sprintf("%v src %v", r.Dst, r.Src))
	}
	slices.Sort(out)
	return out
}

// overlayRoutes returns every route of the namespace with proto 101 (the
// mesh's).
func overlayRoutes(t *testing.T) []netlink.Route {
	t.Helper()
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return rs
}
