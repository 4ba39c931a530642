package overlay

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Fixtures written the seed's way: the JSON text is what serde_json
// produces for zlayer-overlay's PeerInfo (fields in declaration order,
// compact), and the value is its base64url encoding without padding
// (URL_SAFE_NO_PAD), computed once with an independent encoder.
var seedFixtures = []struct {
	name  string
	json  string
	value string
	info  PeerInfo
	// ours is false when our encoder writes other bytes for the same data
	// (labels absent in the input: we always write "labels":{} as serde
	// does).
	ours bool
}{
	{
		name:  "node 42, no labels",
		json:  `{"node_id":42,"wg_pubkey":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","wg_endpoint":"127.0.0.1:51820","overlay_ip":"10.0.0.1","labels":{}}`,
		value: "eyJub2RlX2lkIjo0Miwid2dfcHVia2V5IjoiaFNEd0NZa3dwMVIwaTMzY3RENzNXZzJfT2cwbU9CcjA2NlNwanFxYlRtbyIsIndnX2VuZHBvaW50IjoiMTI3LjAuMC4xOjUxODIwIiwib3ZlcmxheV9pcCI6IjEwLjAuMC4xIiwibGFiZWxzIjp7fX0",
		info: PeerInfo{
			NodeID:    42,
			PublicKey: Key(mustB64(alicePubStd)),
			Endpoint:  netip.MustParseAddrPort("127.0.0.1:51820"),
			OverlayIP: netip.MustParseAddr("10.0.0.1"),
		},
		ours: true,
	},
	{
		name:  "node 42, IPv6 and a label",
		json:  `{"node_id":42,"wg_pubkey":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","wg_endpoint":"[2001:db8::1]:51820","overlay_ip":"fd00::2a","labels":{"zone":"eu-1"}}`,
		value: "eyJub2RlX2lkIjo0Miwid2dfcHVia2V5IjoiaFNEd0NZa3dwMVIwaTMzY3RENzNXZzJfT2cwbU9CcjA2NlNwanFxYlRtbyIsIndnX2VuZHBvaW50IjoiWzIwMDE6ZGI4OjoxXTo1MTgyMCIsIm92ZXJsYXlfaXAiOiJmZDAwOjoyYSIsImxhYmVscyI6eyJ6b25lIjoiZXUtMSJ9fQ",
		info: PeerInfo{
			NodeID:    42,
			PublicKey: Key(mustB64(alicePubStd)),
			Endpoint:  netip.MustParseAddrPort("[2001:db8::1]:51820"),
			OverlayIP: netip.MustParseAddr("fd00::2a"),
			Labels:    map[string]string{"zone": "eu-1"},
		},
		ours: true,
	},
	{
		name:  "node 7, labels absent (serde default)",
		json:  `{"node_id":7,"wg_pubkey":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","wg_endpoint":"127.0.0.1:51820","overlay_ip":"10.0.0.7"}`,
		value: "eyJub2RlX2lkIjo3LCJ3Z19wdWJrZXkiOiJoU0R3Q1lrd3AxUjBpMzNjdEQ3M1dnMl9PZzBtT0JyMDY2U3BqcXFiVG1vIiwid2dfZW5kcG9pbnQiOiIxMjcuMC4wLjE6NTE4MjAiLCJvdmVybGF5X2lwIjoiMTAuMC4wLjcifQ",
		info: PeerInfo{
			NodeID:    7,
			PublicKey: Key(mustB64(alicePubStd)),
			Endpoint:  netip.MustParseAddrPort("127.0.0.1:51820"),
			OverlayIP: netip.MustParseAddr("10.0.0.7"),
		},
	},
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var cmpInfo = cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{}, netip.Prefix{})}

// TestSeedValuesDecode: a value produced the seed's way decodes to the
// expected PeerInfo.
func TestSeedValuesDecode(t *testing.T) {
	for _, f := range seedFixtures {
		t.Run(f.name, func(t *testing.T) {
			if got := base64.RawURLEncoding.EncodeToString([]byte(f.json)); got != f.value {
				t.Fatalf("fixture is inconsistent: base64url(json) = %s", got)
			}
			got, err := DecodeValue(f.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f.info, got, cmpInfo); diff != "" {
				t.Errorf("DecodeValue mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOurValuesAreTheSeeds: our encoder writes the seed's bytes, and what
// we write decodes the seed's way (strict base64url without padding, then
// serde's typed fields; see seedDecode).
func TestOurValuesAreTheSeeds(t *testing.T) {
	for _, f := range seedFixtures {
		t.Run(f.name, func(t *testing.T) {
			v, err := f.info.EncodeValue()
			if err != nil {
				t.Fatal(err)
			}
			if f.ours && v != f.value {
				t.Errorf("EncodeValue = %s\nwant           %s", v, f.value)
			}
			js, err := seedDecode(v)
			if err != nil {
				t.Fatalf("the seed would reject our value: %v", err)
			}
			if f.ours && js != f.json {
				t.Errorf("JSON = %s\nwant   %s", js, f.json)
			}
		})
	}
}

// seedDecode decodes v as the seed's collect_peers does: URL_SAFE_NO_PAD
// (padding and the standard alphabet are errors), then serde_json into
// PeerInfo: node_id a u64, wg_pubkey and overlay_ip strings, wg_endpoint a
// SocketAddr, labels absent or a map of strings; unknown fields ignored.
func seedDecode(v string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return "", err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", err
	}
	if _, err := strconv.ParseUint(string(fields["node_id"]), 10, 64); err != nil {
		return "", fmt.Errorf("node_id: %w", err)
	}
	var pubkey, ep, ip string
	for name, dst := range map[string]*string{"wg_pubkey": &pubkey, "wg_endpoint": &ep, "overlay_ip": &ip} {
		if err := json.Unmarshal(fields[name], dst); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
	}
	if ap, err := netip.ParseAddrPort(ep); err != nil || ap.Addr().Zone() != "" {
		return "", fmt.Errorf("wg_endpoint %q is not a SocketAddr", ep)
	}
	if raw, ok := fields["labels"]; ok {
		var labels map[string]string
		if err := json.Unmarshal(raw, &labels); err != nil || labels == nil {
			return "", fmt.Errorf("labels: %v", err)
		}
	}
	return string(b), nil
}

func TestPeerInfoRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		info PeerInfo
	}{
		{name: "IPv4", info: testInfo(1)},
		{name: "IPv6 endpoint with numeric zone", info: func() PeerInfo {
			p := testInfo(2)
			p.Endpoint = netip.MustParseAddrPort("[fe80::1%3]:51820")
			return p
		}()},
		{name: "max node id", info: func() PeerInfo {
			p := testInfo(3)
			p.NodeID = ^uint64(0)
			return p
		}()},
		{name: "dual-stack", info: func() PeerInfo {
			p := testInfo(5)
			p.OverlayIP6 = netip.MustParseAddr("fd00::5")
			p.Labels = map[string]string{"zone": "a"}
			return p
		}()},
		{name: "labels needing escapes", info: func() PeerInfo {
			p := testInfo(4)
			p.Labels = map[string]string{
				"a\"b":   "c\\d",
				"ctl":    "\b\f\n\r\t\x00\x1f",
				"html":   "<&>",
				"sep":    "\u2028\u2029",
				"unicod": "zürich ✓",
			}
			return p
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.info.EncodeValue()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeValue(v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.info, got, cmpInfo); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			// encoding/json must read our JSON the same way.
			js, _ := tt.info.MarshalJSON()
			var std struct {
				NodeID    uint64            `json:"node_id"`
				PublicKey string            `json:"wg_pubkey"`
				Endpoint  string            `json:"wg_endpoint"`
				OverlayIP string            `json:"overlay_ip"`
				Labels    map[string]string `json:"labels"`
			}
			if err := json.Unmarshal(js, &std); err != nil {
				t.Fatalf("our JSON is not JSON: %v\n%s", err, js)
			}
			key, err := ParseKey(std.PublicKey)
			if err != nil || key != tt.info.PublicKey || std.NodeID != tt.info.NodeID ||
				std.Endpoint != tt.info.Endpoint.String() || std.OverlayIP != tt.info.OverlayIP.String() {
				t.Errorf("encoding/json reads %+v (key error %v), want the fields of %+v", std, err, tt.info)
			}
			if diff := cmp.Diff(tt.info.Labels, std.Labels, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("encoding/json reads other labels (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSerdeEscaping pins the escapes serde_json writes (and encoding/json
// would not: it escapes <, >, & and U+2028/9).
func TestSerdeEscaping(t *testing.T) {
	p := testInfo(1)
	p.Labels = map[string]string{"k": "<a&b>\u2028\"\\\b\f\n\r\t\x01\x7f"}
	js, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `"labels":{"k":"<a&b>` + "\u2028" + `\"\\\b\f\n\r\t\u0001` + "\x7f" + `"}}`
	if !strings.HasSuffix(string(js), want) {
		t.Errorf("JSON = %s\nwant suffix %s", js, want)
	}
}

func TestLabelsAreSorted(t *testing.T) {
	p := testInfo(1)
	p.Labels = map[string]string{"b": "2", "a": "1", "c": "3"}
	js, _ := p.MarshalJSON()
	if !strings.HasSuffix(string(js), `"labels":{"a":"1","b":"2","c":"3"}}`) {
		t.Errorf("JSON = %s", js)
	}
}

func TestDecodeValueMalformed(t *testing.T) {
	enc := func(js string) string { return base64.RawURLEncoding.EncodeToString([]byte(js)) }
	const pk = alicePubURL
	tests := []struct {
		name, value, wantErr string
	}{
		{"not base64url", "!!!", "not base64url"},
		{"standard alphabet", base64.RawStdEncoding.EncodeToString([]byte(`{"node_id":1}???`)), "not base64url"},
		{"not JSON", enc("hello"), "invalid character"},
		{"JSON null", enc("null"), "not a JSON object"},
		{"JSON array", enc("[1,2]"), "cannot unmarshal"},
		{"empty object", enc("{}"), `missing field "node_id"`},
		{"seed test placeholder key", enc(`{"node_id":42,"wg_pubkey":"test-key","wg_endpoint":"127.0.0.1:51820","overlay_ip":"10.0.0.1","labels":{}}`), "wg_pubkey"},
		{"negative node id", enc(`{"node_id":-1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1"}`), "node_id"},
		{"float node id", enc(`{"node_id":1.5,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1"}`), "node_id"},
		{"string node id", enc(`{"node_id":"1","wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1"}`), "node_id"},
		{"field name case", enc(`{"Node_Id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1"}`), `missing field "node_id"`},
		{"endpoint without port", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1","overlay_ip":"10.0.0.1"}`), "wg_endpoint"},
		{"endpoint host name", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"example.com:51820","overlay_ip":"10.0.0.1"}`), "wg_endpoint"},
		{"endpoint port 0", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:0","overlay_ip":"10.0.0.1"}`), "port 0"},
		{"endpoint unspecified", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"0.0.0.0:51820","overlay_ip":"10.0.0.1"}`), "unspecified"},
		{"overlay CIDR", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1/24"}`), "overlay_ip"},
		{"overlay unspecified", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"::"}`), "overlay_ip"},
		{"zero key", enc(`{"node_id":1,"wg_pubkey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1"}`), "missing"},
		{"overlay_ip6 not IPv6", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1","overlay_ip6":"10.0.0.2"}`), "overlay_ip6"},
		{"overlay_ip6 with an IPv6 overlay_ip", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"fd00::1","overlay_ip6":"fd00::2"}`), "dual-stack"},
		{"overlay_ip6 garbage", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1","overlay_ip6":"x"}`), "overlay_ip6"},
		{"labels not strings", enc(`{"node_id":1,"wg_pubkey":"` + pk + `","wg_endpoint":"127.0.0.1:1","overlay_ip":"10.0.0.1","labels":{"a":1}}`), "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeValue(tt.value)
			if err == nil {
				t.Fatalf("DecodeValue = %+v, want an error containing %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeValueLenient(t *testing.T) {
	base := `{"node_id":9,"wg_pubkey":"` + alicePubStd + `","wg_endpoint":"127.0.0.1:9","overlay_ip":"10.0.0.9"`
	tests := []struct{ name, json string }{
		{"standard base64 key", base + `}`},
		{"labels null", base + `,"labels":null}`},
		{"unknown field ignored", base + `,"region":"x"}`},
		{"overlay_ip6 null", base + `,"overlay_ip6":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base64.URLEncoding.EncodeToString([]byte(tt.json)) // padded: tolerated
			got, err := DecodeValue(v)
			if err != nil {
				t.Fatal(err)
			}
			if got.NodeID != 9 || got.PublicKey.String() != alicePubStd {
				t.Errorf("DecodeValue = %+v", got)
			}
		})
	}
}

func TestEncodeInvalid(t *testing.T) {
	p := PeerInfo{NodeID: 1, Endpoint: netip.MustParseAddrPort("[fe80::1%eth0]:1")}
	_, err := p.EncodeValue()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"wg_pubkey is missing", "named zone", "overlay_ip"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestGossipKey(t *testing.T) {
	if got := GossipKey(42); got != "worker:42" {
		t.Errorf("GossipKey(42) = %q", got)
	}
	tests := []struct {
		key    string
		want   uint64
		wantOK bool
	}{
		{"worker:42", 42, true},
		{"worker:0", 0, true},
		{"worker:18446744073709551615", ^uint64(0), true},
		{"worker:18446744073709551616", 0, false},
		{"worker:", 0, false},
		{"worker:+1", 0, false},
		{"worker:-1", 0, false},
		{"worker: 1", 0, false},
		{"worker:abc", 0, false},
		{"worker:1:status", 0, false},
		{"node:1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := ParseGossipKey(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseGossipKey(%q) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzDecodeValue: decoding never panics, and whatever decodes re-encodes
// to a value that decodes to the same PeerInfo.
func FuzzDecodeValue(f *testing.F) {
	for _, fx := range seedFixtures {
		f.Add(fx.value)
	}
	f.Add("")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"node_id":1}`)))
	f.Fuzz(func(t *testing.T, v string) {
		p, err := DecodeValue(v)
		if err != nil {
			return
		}
		again, err := p.EncodeValue()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		q, err := DecodeValue(again)
		if err != nil || !p.Equal(q) {
			t.Fatalf("re-decode = %+v, %v; want %+v", q, err, p)
		}
	})
}

// testInfo returns a valid PeerInfo for node n.
func testInfo(n uint64) PeerInfo {
	return PeerInfo{
		NodeID:    n,
		PublicKey: testPrivateKey(byte(n)).PublicKey(),
		Endpoint:  netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(51820+n)),
		OverlayIP: netip.AddrFrom4([4]byte{100, 64, 0, byte(n)}),
	}
}

// TestDualStackJSON: a dual-stack entry adds overlay_ip6 after labels; the
// rest is the seed's JSON, which the seed reads (unknown fields skipped).
func TestDualStackJSON(t *testing.T) {
	p := testInfo(7)
	p.OverlayIP6 = netip.MustParseAddr("fd00::7")
	js, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	single, _ := testInfo(7).MarshalJSON()
	want := strings.TrimSuffix(string(single), "}") + `,"overlay_ip6":"fd00::7"}`
	if string(js) != want {
		t.Errorf("JSON = %s\nwant   %s", js, want)
	}
}
