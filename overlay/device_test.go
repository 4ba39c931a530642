package overlay

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestApplyDiffAndAllowedIPs(t *testing.T) {
	p := func(n uint64, prefixes ...string) Peer {
		peer := Peer{PublicKey: testInfo(n).PublicKey}
		for _, s := range prefixes {
			peer.AllowedIPs = append(peer.AllowedIPs, netip.MustParsePrefix(s))
		}
		return peer
	}
	peers := applyDiff(nil, Diff{Added: []Peer{p(2, "100.64.0.2/32"), p(3, "100.64.0.3/32", "fd00::3/128")}}, false)
	peers = applyDiff(peers, Diff{Removed: []Peer{p(2)}, Changed: []Peer{p(3, "100.64.0.33/32")}, Added: []Peer{p(4, "100.64.0.4/32")}}, false)
	want := []netip.Prefix{netip.MustParsePrefix("100.64.0.4/32"), netip.MustParsePrefix("100.64.0.33/32")}
	if diff := cmp.Diff(want, allowedIPs(peers), cmpInfo); diff != "" {
		t.Errorf("allowed IPs mismatch (-want +got):\n%s", diff)
	}
	peers = applyDiff(peers, Diff{Added: []Peer{p(5, "fd00::5/128")}}, true)
	if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("fd00::5/128")}, allowedIPs(peers), cmpInfo); diff != "" {
		t.Errorf("after replace (-want +got):\n%s", diff)
	}
}

func TestCheckInterfaceName(t *testing.T) {
	for name, ok := range map[string]bool{
		"chitchat0": true, "wg-mesh_1": true, "abcdefghijklmno": true,
		"": false, "abcdefghijklmnop": false, ".": false, "..": false, "a/b": false, "a:b": false, "a b": false,
	} {
		if err := checkInterfaceName(name); (err == nil) != ok {
			t.Errorf("checkInterfaceName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestDeviceKindString(t *testing.T) {
	for k, want := range map[DeviceKind]string{DeviceNetstack: "netstack", DeviceTUN: "tun", DeviceKernel: "kernel", 7: "DeviceKind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

// TestWGTypesConfig: the kernel device's configuration says what the UAPI
// body of the same diff says.
func TestWGTypesConfig(t *testing.T) {
	_, _, d := goldenDiff()
	got := wgtypesConfig(d, false)
	keepalive := func(s int) *time.Duration { d := time.Duration(s) * time.Second; return &d }
	ipnets := func(ps []netip.Prefix) []net.IPNet {
		var out []net.IPNet
		for _, p := range ps {
			out = append(out, *prefixIPNet(p))
		}
		return out
	}
	var want wgtypes.Config
	for _, p := range d.Removed {
		want.Peers = append(want.Peers, wgtypes.PeerConfig{PublicKey: wgtypes.Key(p.PublicKey), Remove: true})
	}
	for _, l := range []struct {
		peers  []Peer
		update bool
	}{{d.Changed, true}, {d.Added, false}} {
		for _, p := range l.peers {
			pc := wgtypes.PeerConfig{
				PublicKey: wgtypes.Key(p.PublicKey), UpdateOnly: l.update, ReplaceAllowedIPs: true,
				PersistentKeepaliveInterval: keepalive(keepaliveSeconds(p.PersistentKeepalive)),
				AllowedIPs:                  ipnets(p.AllowedIPs),
			}
			if p.Endpoint.IsValid() {
				pc.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
			}
			want.Peers = append(want.Peers, pc)
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("wgtypesConfig mismatch (-want +got):\n%s", diff)
	}
	if len(got.Peers) != len(d.Removed)+len(d.Changed)+len(d.Added) {
		t.Fatalf("%d peer configs for %v", len(got.Peers), d)
	}

	replaced := wgtypesConfig(Diff{Added: d.Added, Removed: d.Removed}, true)
	if !replaced.ReplacePeers || len(replaced.Peers) != len(d.Added) {
		t.Errorf("replace: %+v, want ReplacePeers and the added peers only", replaced)
	}
}

// TestUAPIFromWGTypes: a kernel device's state reads back through the
// same parsers as wireguard-go's UAPI output.
func TestUAPIFromWGTypes(t *testing.T) {
	priv := testPrivateKey(1)
	shake := time.Unix(1700000000, 42)
	dev := &wgtypes.Device{
		PrivateKey: wgtypes.Key(priv),
		ListenPort: 51820,
		Peers: []wgtypes.Peer{{
			PublicKey:                   wgtypes.Key(testInfo(2).PublicKey),
			Endpoint:                    net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::ffff:192.0.2.2]:51822")),
			PersistentKeepaliveInterval: 25 * time.Second,
			LastHandshakeTime:           shake,
			ReceiveBytes:                10, TransmitBytes: 20,
			AllowedIPs: []net.IPNet{*prefixIPNet(netip.MustParsePrefix("100.64.0.2/32")), *prefixIPNet(netip.MustParsePrefix("fd00::2/128"))},
		}, {
			PublicKey: wgtypes.Key(testInfo(3).PublicKey),
		}},
	}
	get := uapiFromWGTypes(dev)
	c, err := ParseUAPI(get)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{PrivateKey: priv, ListenPort: 51820, Peers: []Peer{{
		PublicKey:           testInfo(2).PublicKey,
		Endpoint:            netip.MustParseAddrPort("192.0.2.2:51822"),
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
		PersistentKeepalive: 25 * time.Second,
	}, {PublicKey: testInfo(3).PublicKey}}}
	if !c.Equal(want) {
		t.Errorf("ParseUAPI(uapiFromWGTypes) = %+v\nwant %+v\n%s", c, want, get)
	}
	st, err := ParsePeerStats(get)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || !st[0].LastHandshake.Equal(shake) || st[0].RxBytes != 10 || st[0].TxBytes != 20 || !st[1].LastHandshake.IsZero() {
		t.Errorf("ParsePeerStats = %+v", st)
	}
	if strings.Contains(get, priv.Base64()) {
		t.Error("the UAPI text has the key in base64 (it is hex there)")
	}
}
