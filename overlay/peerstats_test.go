package overlay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParsePeerStats(t *testing.T) {
	k2, k3 := testInfo(2).PublicKey, testInfo(3).PublicKey
	get := uapiCfg(
		"private_key", testPrivateKey(1).Hex(),
		"listen_port", "51820",
		"public_key", k2.Hex(),
		"endpoint", "127.0.0.1:51822",
		"last_handshake_time_sec", "1700000000",
		"last_handshake_time_nsec", "500",
		"tx_bytes", "1234",
		"rx_bytes", "5678",
		"persistent_keepalive_interval", "0",
		"allowed_ip", "100.64.0.2/32",
		"public_key", k3.Hex(),
		"last_handshake_time_sec", "0",
		"last_handshake_time_nsec", "0",
		"tx_bytes", "0",
		"rx_bytes", "0",
		"protocol_version", "1",
	)
	got, err := ParsePeerStats(get)
	if err != nil {
		t.Fatal(err)
	}
	want := []PeerStat{
		{PublicKey: k2, Endpoint: netip.MustParseAddrPort("127.0.0.1:51822"), LastHandshake: time.Unix(1700000000, 500), TxBytes: 1234, RxBytes: 5678},
		{PublicKey: k3},
	}
	if diff := cmp.Diff(want, got, cmpInfo); diff != "" {
		t.Errorf("ParsePeerStats mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		uapiCfg("public_key", "zz"),
		uapiCfg("public_key", k2.Hex(), "rx_bytes", "-1"),
		uapiCfg("public_key", k2.Hex(), "last_handshake_time_sec", "x"),
	} {
		if _, err := ParsePeerStats(bad); err == nil {
			t.Errorf("ParsePeerStats(%q): want an error", bad)
		}
	}
}
