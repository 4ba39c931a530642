package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gossipkit/chitchat-go/overlay"
)

// Three nodes with --overlay: node_0's /overlay/peers lists the two others
// (the seed's PeerInfo JSON), and its /overlay/wg-quick has them as
// [Peer]s routing their /32, without the private key.
func TestOverlayThreeNodes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	base := freePorts(t, 3)
	keyFile := filepath.Join(t.TempDir(), "wg1.key") // node_1 keeps its key there; the others are ephemeral
	nodes := startNodes(ctx, t, base, 3, func(i int) []string {
		args := []string{"--interval_ms", "50",
			"--overlay", "--overlay_node_id", strconv.Itoa(i + 1), "--overlay_ip", fmt.Sprintf("10.200.0.%d", i+1),
			"--wg_listen_port", "0"}
		if i == 1 {
			args = append(args, "--wg_private_key_file", keyFile, "--wg_keepalive", "25s")
		}
		return args
	})

	peers, wgQuick := waitOverlayPeers(ctx, t, nodes[0].url, 2)

	for i, p := range peers {
		if want := uint64(i + 2); p.NodeID != want || p.OverlayIP.String() != fmt.Sprintf("10.200.0.%d", want) ||
			p.Endpoint.Addr().String() != "127.0.0.1" || p.Endpoint.Port() == 0 {
			t.Errorf("peer %d = %+v, want node_id %d, overlay_ip 10.200.0.%d, endpoint 127.0.0.1:<port>", i, p, want, want)
		}
		for _, line := range []string{"PublicKey = " + p.PublicKey.String(), "Endpoint = " + p.Endpoint.String(),
			"AllowedIPs = " + p.OverlayIP.String() + "/32"} {
			if !strings.Contains(wgQuick, "\n"+line+"\n") {
				t.Errorf("/overlay/wg-quick has no line %q:\n%s", line, wgQuick)
			}
		}
	}
	if m := regexp.MustCompile(`(?m)^\s*PrivateKey`).FindString(wgQuick); m != "" {
		t.Errorf("/overlay/wg-quick shows the private key:\n%s", wgQuick)
	}
	if !strings.HasPrefix(wgQuick, "[Interface]\n# PrivateKey = (omitted)\nListenPort = ") ||
		!strings.Contains(wgQuick, "\nAddress = 10.200.0.1/32\n") {
		t.Errorf("/overlay/wg-quick interface section is not node_0's:\n%s", wgQuick)
	}

	// node_1 created its key file, private, and announces that key.
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("--wg_private_key_file was not created: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", keyFile, st.Mode().Perm())
	}
	priv, err := overlay.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if peers[0].PublicKey != priv.PublicKey() {
		t.Errorf("node_1 announces %v, not the public key of its key file (%v)", peers[0].PublicKey, priv.PublicKey())
	}
	// Each peer has its health: configured on the device, byte counts.
	_, _, body := httpGet(ctx, t, nodes[0].url+"/overlay/peers")
	var docs []struct {
		NodeID uint64 `json:"node_id"`
		Health *struct {
			Configured    bool     `json:"configured"`
			RxBytes       *uint64  `json:"rx_bytes"`
			TxBytes       *uint64  `json:"tx_bytes"`
			ProbeAnswered *bool    `json:"probe_answered"`
			HandshakeAge  *float64 `json:"last_handshake_age_seconds"`
		} `json:"health"`
	}
	if err := json.Unmarshal(body, &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if h := d.Health; h == nil || !h.Configured || h.RxBytes == nil || h.TxBytes == nil || h.ProbeAnswered == nil {
			t.Errorf("/overlay/peers: worker %d has health %+v, want configured with byte counts and a probe status:\n%s", d.NodeID, h, body)
		}
	}
	// /ui shows them in a block of its own.
	if _, _, ui := httpGet(ctx, t, nodes[0].url+"/ui"); !strings.Contains(string(ui), `id="overlayPeers"`) ||
		!strings.Contains(string(ui), `fetch("/overlay/peers"`) {
		t.Error("/ui has no overlay peers block")
	}

	// /metrics has the overlay's counters and a line per peer.
	_, _, body = httpGet(ctx, t, nodes[0].url+"/metrics")
	for _, re := range []string{
		`(?m)^chitchat_overlay_peers 2$`, `(?m)^chitchat_overlay_workers 2$`, `(?m)^chitchat_overlay_quarantined 0$`,
		`(?m)^chitchat_overlay_conflicts_total 0$`, `(?m)^chitchat_overlay_refused_total 0$`, `(?m)^chitchat_overlay_malformed_total 0$`,
		`(?m)^chitchat_overlay_reconcile_failures_total 0$`, `(?m)^chitchat_overlay_reconcile_retries_total 0$`,
		`(?m)^chitchat_overlay_peer_received_bytes_total\{overlay_ip="10\.200\.0\.2",peer="2"\} \d+$`,
		`(?m)^chitchat_overlay_peer_sent_bytes_total\{overlay_ip="10\.200\.0\.3",peer="3"\} \d+$`,
		`(?m)^chitchat_overlay_peer_probe_answered\{overlay_ip="10\.200\.0\.2",peer="2"\} [01]$`,
	} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("node_0's /metrics has no line matching %s", re)
		}
	}

	// Its keepalive applies to its own peers: node_1's file says so.
	if _, conf := waitOverlayPeers(ctx, t, nodes[1].url, 2); strings.Count(conf, "PersistentKeepalive = 25\n") != 2 {
		t.Errorf("node_1 (--wg_keepalive 25s) does not set a 25 s keepalive on its 2 peers:\n%s", conf)
	}
}

// waitOverlayPeers returns the node's /overlay/peers and /overlay/wg-quick
// once they show n peers. The view of the peers follows gossip, and the
// device follows the view: both are re-read at each event of the node.
func waitOverlayPeers(ctx context.Context, t *testing.T, base string, n int) ([]overlay.PeerInfo, string) {
	t.Helper()
	var (
		peers   []overlay.PeerInfo
		wgQuick string
		err     error
	)
	_, werr := watch(ctx, base, cond{fmt.Sprintf("%d overlay peers and %d [Peer] sections", n, n), func(stateDoc) bool {
		peers, wgQuick, err = readOverlay(ctx, base)
		return err == nil && len(peers) == n && strings.Count(wgQuick, "[Peer]") == n
	}})
	if werr != nil {
		t.Fatalf("%v; last read: %v %d peers:\n%s", werr, err, len(peers), wgQuick)
	}
	return peers, wgQuick
}

// readOverlay fetches /overlay/peers and /overlay/wg-quick.
func readOverlay(ctx context.Context, base string) ([]overlay.PeerInfo, string, error) {
	code, ctype, b, err := fetch(ctx, http.DefaultClient, base+"/overlay/peers")
	if err != nil {
		return nil, "", err
	}
	if code != http.StatusOK || ctype != "application/json; charset=utf-8" {
		return nil, "", fmt.Errorf("GET /overlay/peers = %d %q: %s", code, ctype, b)
	}
	var peers []overlay.PeerInfo
	if err := json.Unmarshal(b, &peers); err != nil {
		return nil, "", fmt.Errorf("GET /overlay/peers: %v: %s", err, b)
	}
	code, ctype, b, err = fetch(ctx, http.DefaultClient, base+"/overlay/wg-quick")
	if err != nil {
		return nil, "", err
	}
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" {
		return nil, "", fmt.Errorf("GET /overlay/wg-quick = %d %q: %s", code, ctype, b)
	}
	return peers, string(b), nil
}

// Without --overlay, the overlay endpoints say how to turn it on, and
// /metrics has no overlay metrics.
func TestOverlayOff(t *testing.T) {
	_, ts := testNode(t)
	if _, body := get(t, ts.URL+"/metrics"); strings.Contains(body, "chitchat_overlay_") {
		t.Error("/metrics has overlay metrics without --overlay")
	}
	for _, path := range []string{"/overlay/peers", "/overlay/wg-quick"} {
		resp, body := get(t, ts.URL+path)
		var e errorDoc
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusNotFound ||
			resp.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
			!strings.Contains(e.Error, "--overlay --overlay_node_id N --overlay_ip") {
			t.Errorf("GET %s = %d %s, want 404 with a JSON error saying how to enable the overlay", path, resp.StatusCode, body)
		}
	}
}
