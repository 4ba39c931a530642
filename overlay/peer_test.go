package overlay

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// Guard tests (tailscale wgcfg/config_test.go): adding a field to Peer,
// Config or PeerInfo fails here until Equal and Clone handle it and the
// field is listed.

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		names = append(names, t.Field(i).Name)
	}
	return names
}

func TestFieldGuards(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want []string
	}{
		{"Peer", reflect.TypeFor[Peer](), []string{"PublicKey", "Endpoint", "AllowedIPs", "PersistentKeepalive"}},
		{"Config", reflect.TypeFor[Config](), []string{"PrivateKey", "ListenPort", "Addresses", "MTU", "Peers"}},
		{"PeerInfo", reflect.TypeFor[PeerInfo](), []string{"NodeID", "PublicKey", "Endpoint", "OverlayIP", "Labels", "OverlayIP6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fieldNames(tt.typ)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s fields = %v, want %v: update Equal, Clone and this list", tt.name, got, tt.want)
			}
		})
	}
}

// TestPeerEqual changes each field in turn: Equal must notice every one.
func TestPeerEqual(t *testing.T) {
	base := func() Peer {
		return Peer{
			PublicKey:           testPrivateKey(1).PublicKey(),
			Endpoint:            netip.MustParseAddrPort("127.0.0.1:51821"),
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")},
			PersistentKeepalive: 25 * time.Second,
		}
	}
	mutations := map[string]func(*Peer){
		"PublicKey":           func(p *Peer) { p.PublicKey[0] ^= 1 },
		"Endpoint":            func(p *Peer) { p.Endpoint = netip.MustParseAddrPort("127.0.0.1:1") },
		"AllowedIPs":          func(p *Peer) { p.AllowedIPs = append(p.AllowedIPs, netip.MustParsePrefix("fd00::1/128")) },
		"PersistentKeepalive": func(p *Peer) { p.PersistentKeepalive = 0 },
	}
	for _, f := range fieldNames(reflect.TypeFor[Peer]()) {
		t.Run(f, func(t *testing.T) {
			mut, ok := mutations[f]
			if !ok {
				t.Fatalf("no mutation for field %s", f)
			}
			a, b := base(), base()
			if !a.Equal(b) {
				t.Fatal("equal peers compare unequal")
			}
			mut(&b)
			if a.Equal(b) {
				t.Errorf("Equal ignores %s", f)
			}
		})
	}
	p := base()
	c := p.Clone()
	c.AllowedIPs[0] = netip.MustParsePrefix("100.64.0.9/32")
	if p.AllowedIPs[0] == c.AllowedIPs[0] {
		t.Error("Clone shares AllowedIPs")
	}
}

func TestConfigEqual(t *testing.T) {
	base := func() Config {
		return Config{
			PrivateKey: testPrivateKey(1),
			ListenPort: 51820,
			Addresses:  []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")},
			MTU:        1420,
			Peers:      []Peer{{PublicKey: testPrivateKey(2).PublicKey()}},
		}
	}
	mutations := map[string]func(*Config){
		"PrivateKey": func(c *Config) { c.PrivateKey[1] ^= 1 },
		"ListenPort": func(c *Config) { c.ListenPort++ },
		"Addresses":  func(c *Config) { c.Addresses = nil },
		"MTU":        func(c *Config) { c.MTU = 1280 },
		"Peers":      func(c *Config) { c.Peers[0].PersistentKeepalive = time.Second },
	}
	for _, f := range fieldNames(reflect.TypeFor[Config]()) {
		t.Run(f, func(t *testing.T) {
			mut, ok := mutations[f]
			if !ok {
				t.Fatalf("no mutation for field %s", f)
			}
			a, b := base(), base().Clone()
			if !a.Equal(b) {
				t.Fatal("equal configs compare unequal")
			}
			mut(&b)
			if a.Equal(b) {
				t.Errorf("Equal ignores %s", f)
			}
		})
	}
}

func TestPeerInfoEqual(t *testing.T) {
	base := func() PeerInfo {
		p := testInfo(1)
		p.Labels = map[string]string{"zone": "a"}
		return p
	}
	mutations := map[string]func(*PeerInfo){
		"NodeID":     func(p *PeerInfo) { p.NodeID++ },
		"PublicKey":  func(p *PeerInfo) { p.PublicKey[2] ^= 1 },
		"Endpoint":   func(p *PeerInfo) { p.Endpoint = netip.MustParseAddrPort("127.0.0.2:1") },
		"OverlayIP":  func(p *PeerInfo) { p.OverlayIP = netip.MustParseAddr("100.64.9.9") },
		"Labels":     func(p *PeerInfo) { p.Labels["zone"] = "b" },
		"OverlayIP6": func(p *PeerInfo) { p.OverlayIP6 = netip.MustParseAddr("fd00::9") },
	}
	for _, f := range fieldNames(reflect.TypeFor[PeerInfo]()) {
		t.Run(f, func(t *testing.T) {
			a, b := base(), base().Clone()
			if !a.Equal(b) {
				t.Fatal("equal infos compare unequal")
			}
			mutations[f](&b)
			if a.Equal(b) {
				t.Errorf("Equal ignores %s", f)
			}
		})
	}
	a, b := base(), base()
	a.Labels, b.Labels = nil, map[string]string{}
	if !a.Equal(b) {
		t.Error("nil and empty labels differ")
	}
}
