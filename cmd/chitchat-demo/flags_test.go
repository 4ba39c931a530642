package main

import (
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gossipkit/chitchat-go/chitchat"
)

func TestFlagDefaults(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream chitchat-test's settings.
	if o.listen.String() != "127.0.0.1:10000" || o.public != o.listen || o.interval != 500*time.Millisecond ||
		o.clusterID != "testing" || o.deadGrace != 10*time.Second || o.tombGrace != 60*time.Second {
		t.Errorf("defaults = %+v", o)
	}
	if !regexp.MustCompile(`^server:127\.0\.0\.1:10000-[a-z]+-[a-z]+-[a-z]+-[a-z]+$`).MatchString(o.nodeID) {
		t.Errorf("default node id %q is not server:{public_addr}-{memorable id}", o.nodeID)
	}
	cfg, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the default configuration is invalid: %v", err)
	}
	if cfg.FailureDetector.DeadNodeGracePeriod != 10*time.Second || cfg.MarkedForDeletionGracePeriod != 60*time.Second {
		t.Errorf("grace periods = %v, %v; want 10s, 60s", cfg.FailureDetector.DeadNodeGracePeriod, cfg.MarkedForDeletionGracePeriod)
	}
}

func TestFlagsParse(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "gossip.keys", "# rotation in progress\n\n  "+k2.String()+"  \n# old one:\n"+k1.String()+"\n")
	o, err := parseNodeFlags([]string{
		"--listen_addr", "0.0.0.0:7000", "--public_addr=[::1]:7001", "--node_id", "n1",
		"--seed", "localhost:7000", "--seed=10.0.0.1:7000", "-interval_ms", "50",
		"--cluster_id", "prod", "--dead_node_grace_period", "1m", "--marked_for_deletion_grace_period", "2h",
		"--phi_threshold", "5.5", "--initial_interval", "100ms", "--log_level", "DEBUG", "--leave_timeout", "0",
		"--gossip_key", k1.String(), "--gossip_key_file", keyFile, "--gossip_accept_plaintext", "--gossip_send_plaintext=false",
		"--overlay", "--overlay_node_id", "42", "--overlay_ip", "10.200.0.42", "--wg_listen_port", "0",
		"--wg_private_key_file", filepath.Join(dir, "wg.key"), "--wg_keepalive", "25s",
		"--http_max_connections", "64", "--http_max_event_streams", "8",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := nodeOptions{
		nodeID: "n1", seeds: []string{"localhost:7000", "10.0.0.1:7000"}, interval: 50 * time.Millisecond,
		clusterID: "prod", deadGrace: time.Minute, tombGrace: 2 * time.Hour, phi: 5.5, initial: 100 * time.Millisecond,
		logLevel: -4, leaveTimeout: 0,
		gossipKeys: []chitchat.Key{k1, k2, k1}, acceptPlaintext: true, sendPlaintext: false,
		overlay: &overlayOptions{nodeID: 42, ip: netip.MustParseAddr("10.200.0.42"), listenAddr: netip.IPv4Unspecified(), listenPort: 0,
			keyFile: filepath.Join(dir, "wg.key"), keepalive: 25 * time.Second},
		http: httpOptions{maxConns: 64, maxEventStreams: 8},
	}
	opts := []cmp.Option{cmp.AllowUnexported(nodeOptions{}, overlayOptions{}, httpOptions{}), cmpopts.IgnoreFields(nodeOptions{}, "listen", "public", "catalog"),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}
	if diff := cmp.Diff(want, o, opts...); diff != "" {
		t.Errorf("options mismatch (-want +got):\n%s", diff)
	}
	if o.listen.String() != "0.0.0.0:7000" || o.public.String() != "[::1]:7001" {
		t.Errorf("listen %v, public %v", o.listen, o.public)
	}
	cfg, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Keyring.Keys(); !slices.Equal(got, []chitchat.Key{k1, k2}) || !cfg.AcceptPlaintext || cfg.SendPlaintext {
		t.Errorf("keyring %v (accept %v, send %v), want [k1 k2] with the flag's key primary, accept only",
			got, cfg.AcceptPlaintext, cfg.SendPlaintext)
	}
	// The mesh configuration made of them: TestOverlayMeshConfig
	// (overlay_config_test.go, -tags overlay).
}

func TestFlagDefaultsNewFeatures(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.leaveTimeout != 3*time.Second || o.gossipKeys != nil || o.overlay != nil {
		t.Errorf("leave timeout %v, keys %v, overlay %+v; want 3s, none, off", o.leaveTimeout, o.gossipKeys, o.overlay)
	}
	o, err = parseNodeFlags([]string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if o.overlay.listenPort != 51820 || o.overlay.keyFile != "" || o.overlay.keepalive != 0 {
		t.Errorf("overlay defaults %+v, want port 51820, ephemeral key, no keepalive", *o.overlay)
	}
}

// Problems with the keys, the leave and the overlay, each naming its flag
// and what to do. A key is never quoted back.
func TestFlagsSecurityOverlayProblems(t *testing.T) {
	dir := t.TempDir()
	good := testKey(1).String()
	notBase64 := "this is not a key!"
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	onlyComments := writeFile(t, dir, "empty.keys", "# nothing yet\n\n")
	badLine := writeFile(t, dir, "bad.keys", "# c\n"+good+"\n"+short+"\n")
	overlayOn := []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1"}
	tests := []struct {
		name string
		args []string
		want []string // one problem each, in order
	}{
		{"key not base64", []string{"--gossip_key", notBase64}, []string{"--gossip_key: gossip key is not base64; " + keyHint}},
		{"short key", []string{"--gossip_key", short}, []string{"--gossip_key: gossip key is 16 bytes, want 32"}},
		{"second key bad", []string{"--gossip_key", good, "--gossip_key", short}, []string{"--gossip_key (#2): gossip key is 16 bytes"}},
		{"all-zero key", []string{"--gossip_key", zero}, []string{"--gossip_key: the all-zero key is refused"}},
		{"key file missing", []string{"--gossip_key_file", filepath.Join(dir, "nope")}, []string{`nope": cannot read it: no such file`}},
		{"key file without keys", []string{"--gossip_key_file", onlyComments}, []string{"holds no key: write one base64 key per line; " + keyHint}},
		{"key file bad line", []string{"--gossip_key_file", badLine}, []string{"bad.keys, line 3: gossip key is 16 bytes"}},
		{"plaintext switches without a key", []string{"--gossip_accept_plaintext", "--gossip_send_plaintext"}, []string{"need a key"}},
		{"plaintext switch not a bool", []string{"--gossip_key", good, "--gossip_accept_plaintext=maybe"}, []string{"--gossip_accept_plaintext=\"maybe\": must be true or false"}},
		{"negative leave timeout", []string{"--leave_timeout", "-1s"}, []string{`--leave_timeout "-1s"`}},
		{"leave timeout without unit", []string{"--leave_timeout", "3"}, []string{`--leave_timeout "3"`}},
		{"overlay without ids", []string{"--overlay"}, []string{"--overlay needs --overlay_node_id", "--overlay needs --overlay_ip"}},
		{"overlay_ip with prefix", []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1/32"}, []string{`--overlay_ip "10.200.0.1/32"`}},
		{"overlay_ip unspecified", []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "0.0.0.0"}, []string{`--overlay_ip "0.0.0.0"`}},
		{"negative overlay_node_id", []string{"--overlay", "--overlay_node_id", "-1", "--overlay_ip", "10.200.0.1"}, []string{`--overlay_node_id "-1"`}},
		{"wg port out of range", append(overlayOn, "--wg_listen_port", "70000"), []string{`--wg_listen_port "70000"`}},
		{"wg port is the gossip port", append(overlayOn, "--listen_addr", "127.0.0.1:7000", "--wg_listen_port", "7000"), []string{"--wg_listen_port 7000 is also the gossip port"}},
		{"keepalive not whole seconds", append(overlayOn, "--wg_keepalive", "1500ms"), []string{`--wg_keepalive "1500ms"`}},
		{"wg key file in a missing directory", append(overlayOn, "--wg_private_key_file", filepath.Join(dir, "no", "wg.key")), []string{"cannot be created there"}},
		{"overlay flags without --overlay", []string{"--overlay_ip", "10.200.0.1", "--wg_keepalive", "25s"}, []string{"--overlay_ip, --wg_keepalive only apply to the overlay: add --overlay"}},
		{"overlay off explicitly", []string{"--overlay=false", "--overlay_node_id", "1"}, []string{"--overlay_node_id only apply to the overlay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNodeFlags(tt.args)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			msgs := strings.Split(err.Error(), "\n")
			if len(msgs) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(msgs), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem mentions %q in:\n%s", w, err)
				}
			}
			for _, secret := range []string{good, short, zero} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a key:\n%s", err)
				}
			}
		})
	}
}

// testKey returns a gossip key made of the byte b.
func testKey(b byte) chitchat.Key {
	var k chitchat.Key
	for i := range k {
		k[i] = b
	}
	return k
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every problem is reported at once, each naming its flag.
func TestFlagsAllProblems(t *testing.T) {
	_, err := parseNodeFlags([]string{
		"--listen_addr", "nope", "--bogus", "value", "--interval_ms", "-1", "--seed", ":1",
		"--seed", "h:99999", "--node_id=", "--cluster_id=", "--phi_threshold", "NaN",
		"--marked_for_deletion_grace_period", "-1s", "--log_level", "chatty", "--other",
	})
	if err == nil {
		t.Fatal("no error")
	}
	msgs := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		"unknown flag --bogus", "unknown flag --other", "--listen_addr", "--interval_ms", `--seed ":1"`, `--seed "h:99999"`,
		"--node_id", "--cluster_id", "--phi_threshold", "--marked_for_deletion_grace_period", "--log_level",
	} {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, want)
		}
		if !found {
			t.Errorf("no problem mentions %q in:\n%s", want, err)
		}
	}
	if len(msgs) != 11 {
		t.Errorf("%d problems, want 11:\n%s", len(msgs), err)
	}
}

func TestMemorableID(t *testing.T) {
	re := regexp.MustCompile(`^[a-z]+-[a-z]+-[a-z]+-[a-z]+$`)
	seen := map[string]bool{}
	for range 100 {
		id := memorableID()
		if !re.MatchString(id) {
			t.Fatalf("memorableID() = %q, want four hyphenated words", id)
		}
		seen[id] = true
	}
	if len(seen) < 95 { // 2^24 ids: collisions among 100 are very unlikely
		t.Errorf("only %d distinct ids out of 100", len(seen))
	}
}

func TestClusterArgs(t *testing.T) {
	o, err := parseClusterFlags([]string{"-n", "3", "--base_port", "20000", "--interval_ms", "100", "--", "--log_level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"--listen_addr", "127.0.0.1:20000", "--node_id", "node_0", "--interval_ms", "100", "--dns_addr", "127.0.0.1:8600", "--log_level", "debug"},
		{"--listen_addr", "127.0.0.1:20001", "--node_id", "node_1", "--interval_ms", "100", "--seed", "127.0.0.1:20000", "--dns_addr", "127.0.0.1:8601", "--log_level", "debug"},
		{"--listen_addr", "127.0.0.1:20002", "--node_id", "node_2", "--interval_ms", "100", "--seed", "127.0.0.1:20000", "--dns_addr", "127.0.0.1:8602", "--log_level", "debug"},
	}
	for i, w := range want {
		if diff := cmp.Diff(w, o.nodeArgs(i)); diff != "" {
			t.Errorf("node %d args mismatch (-want +got):\n%s", i, diff)
		}
	}
	// The launcher gives its nodes the time to leave before killing them.
	if o.stopGrace != 3*time.Second+stopTimeout {
		t.Errorf("stop grace %v, want the default leave timeout (3s) + %v", o.stopGrace, stopTimeout)
	}
	o, err = parseClusterFlags([]string{"--", "--leave_timeout", "10s"})
	if err != nil || o.stopGrace != 10*time.Second+stopTimeout {
		t.Errorf("with --leave_timeout 10s: stop grace %v (%v), want 10s + %v", o.stopGrace, err, stopTimeout)
	}
}
