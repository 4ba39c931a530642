package overlay

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// uapiCfg builds UAPI text from key, value pairs, as wireguard-go's
// device_test.go does, so expectations read like the protocol.
func uapiCfg(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("uapiCfg: odd number of arguments")
	}
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	return b.String()
}

func pfx(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }

// goldenConfig is a device with an IPv4 peer with keepalive, an IPv6 peer
// without, and a peer with no endpoint (it will be reached by roaming).
func goldenConfig() Config {
	return Config{
		PrivateKey: testPrivateKey(1),
		ListenPort: 51820,
		Addresses:  pfx("100.64.0.1/32"),
		MTU:        1420,
		Peers: []Peer{
			{
				PublicKey:           testPrivateKey(2).PublicKey(),
				Endpoint:            netip.MustParseAddrPort("127.0.0.1:51822"),
				AllowedIPs:          pfx("100.64.0.2/32"),
				PersistentKeepalive: 25 * time.Second,
			},
			{
				PublicKey:  testPrivateKey(3).PublicKey(),
				Endpoint:   netip.MustParseAddrPort("[2001:db8::3]:51823"),
				AllowedIPs: pfx("fd00::3/128"),
			},
			{
				PublicKey:  testPrivateKey(4).PublicKey(),
				AllowedIPs: pfx("100.64.0.4/32"),
			},
		},
	}
}

// goldenDiff removes peer 3, changes peer 2's endpoint and keepalive, and
// adds peer 5.
func goldenDiff() (old, new []Peer, d Diff) {
	old = goldenConfig().Peers
	new = clonePeers(old)
	new[0].Endpoint = netip.MustParseAddrPort("127.0.0.1:60002")
	new[0].PersistentKeepalive = 0
	new = slices.Delete(new, 1, 2)
	new = append(new, Peer{
		PublicKey:           testPrivateKey(5).PublicKey(),
		Endpoint:            netip.MustParseAddrPort("127.0.0.1:51825"),
		AllowedIPs:          pfx("100.64.0.5/32"),
		PersistentKeepalive: 25 * time.Second,
	})
	return old, new, DiffPeers(old, new)
}

func TestRenderGolden(t *testing.T) {
	c := goldenConfig()
	_, _, d := goldenDiff()
	tests := []struct {
		name, file, got string
	}{
		{"wg-quick", "wgquick.conf", RenderWGQuick(c, false)},
		{"wg-quick without private key", "wgquick_public.conf", RenderWGQuick(c, true)},
		{"wg-quick empty", "wgquick_empty.conf", RenderWGQuick(Config{PrivateKey: testPrivateKey(1)}, false)},
		{"uapi full", "uapi_full.txt", RenderUAPI(c)},
		{"uapi diff", "uapi_diff.txt", RenderUAPIDiff(d)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { golden(t, tt.file, tt.got) })
	}
}

func TestRenderWGQuickOmitsPrivateKey(t *testing.T) {
	c := goldenConfig()
	out := RenderWGQuick(c, true)
	if strings.Contains(out, c.PrivateKey.Base64()) {
		t.Error("the private key is in the output")
	}
	if !strings.Contains(RenderWGQuick(c, false), "PrivateKey = "+c.PrivateKey.Base64()) {
		t.Error("the private key is missing")
	}
}

func TestRenderUAPIDiffText(t *testing.T) {
	_, _, d := goldenDiff()
	k := func(n byte) string { return testPrivateKey(n).PublicKey().Hex() }
	want := uapiCfg(
		"public_key", k(3),
		"remove", "true",
		"public_key", k(2),
		"update_only", "true",
		"endpoint", "127.0.0.1:60002",
		"persistent_keepalive_interval", "0",
		"replace_allowed_ips", "true",
		"allowed_ip", "100.64.0.2/32",
		"public_key", k(5),
		"endpoint", "127.0.0.1:51825",
		"persistent_keepalive_interval", "25",
		"replace_allowed_ips", "true",
		"allowed_ip", "100.64.0.5/32",
	)
	if diff := cmp.Diff(want, RenderUAPIDiff(d)); diff != "" {
		t.Errorf("RenderUAPIDiff mismatch (-want +got):\n%s", diff)
	}
	if got := RenderUAPIDiff(Diff{}); got != "" {
		t.Errorf("empty diff renders %q", got)
	}
}

func TestRenderUAPIText(t *testing.T) {
	c := Config{PrivateKey: testPrivateKey(1), Peers: goldenConfig().Peers[2:]}
	want := uapiCfg(
		"private_key", testPrivateKey(1).Hex(),
		"replace_peers", "true",
		"public_key", testPrivateKey(4).PublicKey().Hex(),
		"persistent_keepalive_interval", "0",
		"replace_allowed_ips", "true",
		"allowed_ip", "100.64.0.4/32",
	)
	if diff := cmp.Diff(want, RenderUAPI(c)); diff != "" {
		t.Errorf("RenderUAPI mismatch (-want +got):\n%s", diff)
	}
}

// noSocketBind parses endpoints as the real bind does but opens no socket
// and sends nothing, so a device can be configured without touching the
// network (the netstack TUN brings the device up by itself).
type noSocketBind struct{ conn.Bind }

func (noSocketBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) { return nil, port, nil }
func (noSocketBind) Close() error                                         { return nil }
func (noSocketBind) Send([][]byte, conn.Endpoint) error                   { return nil }

// TestUAPIOnDevice feeds the renderings to a real wireguard-go device and
// reads its state back with IpcGet.
func TestUAPIOnDevice(t *testing.T) {
	tunDev, _, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("100.64.0.1")}, nil, DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tunDev, noSocketBind{conn.NewStdNetBind()}, device.NewLogger(device.LogLevelSilent, ""))
	defer dev.Close()

	readBack := func() Config {
		t.Helper()
		get, err := dev.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseUAPI(get)
		if err != nil {
			t.Fatal(err)
		}
		sortPeers(c.Peers)
		return c
	}

	c := goldenConfig()
	if err := dev.IpcSet(RenderUAPI(c)); err != nil {
		t.Fatalf("IpcSet(RenderUAPI): %v", err)
	}
	want := Config{PrivateKey: c.PrivateKey, ListenPort: c.ListenPort, Peers: clonePeers(c.Peers)}
	sortPeers(want.Peers)
	if diff := cmp.Diff(want, readBack(), cmpInfo); diff != "" {
		t.Errorf("device after RenderUAPI (-want +got):\n%s", diff)
	}

	_, newPeers, d := goldenDiff()
	if err := dev.IpcSet(RenderUAPIDiff(d)); err != nil {
		t.Fatalf("IpcSet(RenderUAPIDiff): %v", err)
	}
	want.Peers = clonePeers(newPeers)
	sortPeers(want.Peers)
	if diff := cmp.Diff(want, readBack(), cmpInfo); diff != "" {
		t.Errorf("device after RenderUAPIDiff (-want +got):\n%s", diff)
	}
}

func sortPeers(ps []Peer) { slices.SortFunc(ps, comparePublicKeys) }

func TestParseUAPIErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"no equals", "private_key\n"},
		{"bad private key", uapiCfg("private_key", "zz")},
		{"bad port", uapiCfg("listen_port", "70000")},
		{"peer line before a peer", uapiCfg("endpoint", "127.0.0.1:1")},
		{"bad public key", uapiCfg("public_key", "00")},
		{"bad endpoint", uapiCfg("public_key", testPrivateKey(1).Hex(), "endpoint", "nowhere")},
		{"bad keepalive", uapiCfg("public_key", testPrivateKey(1).Hex(), "persistent_keepalive_interval", "-1")},
		{"bad allowed ip", uapiCfg("public_key", testPrivateKey(1).Hex(), "allowed_ip", "10.0.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := ParseUAPI(tt.in); err == nil {
				t.Errorf("ParseUAPI = %+v, want an error", c)
			}
		})
	}
	// Statistics and unknown lines are ignored.
	c, err := ParseUAPI(uapiCfg("public_key", testPrivateKey(1).Hex(), "rx_bytes", "12", "last_handshake_time_sec", "0"))
	if err != nil || len(c.Peers) != 1 {
		t.Errorf("ParseUAPI = %+v, %v", c, err)
	}
}

func TestDiffPeers(t *testing.T) {
	key := func(n byte) Key { return testPrivateKey(n).PublicKey() }
	peer := func(n byte, port uint16) Peer {
		return Peer{
			PublicKey:  key(n),
			Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, n}), 32)},
		}
	}
	rotated := peer(1, 1)
	rotated.PublicKey = key(9)
	tests := []struct {
		name     string
		old, new []Peer
		want     Diff
	}{
		{name: "empty", want: Diff{}},
		{name: "unchanged", old: []Peer{peer(1, 1), peer(2, 2)}, new: []Peer{peer(2, 2), peer(1, 1)}, want: Diff{}},
		{name: "add", old: []Peer{peer(1, 1)}, new: []Peer{peer(1, 1), peer(2, 2)}, want: Diff{Added: []Peer{peer(2, 2)}}},
		{name: "remove", old: []Peer{peer(1, 1), peer(2, 2)}, new: []Peer{peer(2, 2)}, want: Diff{Removed: []Peer{peer(1, 1)}}},
		{name: "change endpoint", old: []Peer{peer(1, 1)}, new: []Peer{peer(1, 7)}, want: Diff{Changed: []Peer{peer(1, 7)}}},
		{name: "key rotation is remove plus add", old: []Peer{peer(1, 1)}, new: []Peer{rotated}, want: Diff{Added: []Peer{rotated}, Removed: []Peer{peer(1, 1)}}},
		{
			name: "all at once",
			old:  []Peer{peer(1, 1), peer(2, 2), peer(3, 3)},
			new:  []Peer{peer(3, 33), peer(4, 4), peer(2, 2)},
			want: Diff{Added: []Peer{peer(4, 4)}, Removed: []Peer{peer(1, 1)}, Changed: []Peer{peer(3, 33)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DiffPeers(tt.old, tt.new)
			if diff := cmp.Diff(tt.want, got, cmpInfo); diff != "" {
				t.Errorf("DiffPeers mismatch (-want +got):\n%s", diff)
			}
			if got.Empty() != (len(tt.want.Added)+len(tt.want.Removed)+len(tt.want.Changed) == 0) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}

func TestDiffString(t *testing.T) {
	_, _, d := goldenDiff()
	s := d.String()
	if !strings.HasPrefix(s, "+1 -1 ~1 (+") {
		t.Errorf("String() = %q", s)
	}
	var big Diff
	for n := range byte(7) {
		big.Added = append(big.Added, Peer{PublicKey: testPrivateKey(n).PublicKey()})
	}
	if s := big.String(); !strings.HasSuffix(s, "… +2)") {
		t.Errorf("String() = %q, want the list capped at five", s)
	}
	if s := (Diff{}).String(); s != "+0 -0 ~0" {
		t.Errorf("empty String() = %q", s)
	}
}
