package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Two nodes sharing a key (one from --gossip_key, one from
// --gossip_key_file) form a cluster. A node with another key and a node
// without any are shut out: neither ever shows up on the first two, whose
// /metrics count their datagrams as auth failures and refused plaintext.
func TestGossipEncryption(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	key, other := testKey(7).String(), testKey(9).String()
	keyFile := writeFile(t, t.TempDir(), "gossip.keys", "# the cluster's key\n\n"+key+"\n")
	base := freePorts(t, 4)
	common := []string{"--interval_ms", "50", "--seed", addr(base), "--seed", addr(base + 1)}
	a := startNode(ctx, t, "a", append([]string{"--listen_addr", addr(base), "--node_id", "a", "--gossip_key", key}, common...)...)
	b := startNode(ctx, t, "b", append([]string{"--listen_addr", addr(base + 1), "--node_id", "b", "--gossip_key_file", keyFile}, common...)...)
	for _, p := range []*proc{a, b} {
		mustWatch(ctx, t, p.url, liveDead(2, 0))
	}
	c := startNode(ctx, t, "c", append([]string{"--listen_addr", addr(base + 2), "--node_id", "c", "--gossip_key", other}, common...)...)
	d := startNode(ctx, t, "d", append([]string{"--listen_addr", addr(base + 3), "--node_id", "d"}, common...)...)

	// Until both a and b have dropped datagrams of c (auth failure) and of
	// d (plaintext refused), at every event: they know only each other.
	onlyAB := cond{"only a and b are known", func(d stateDoc) bool {
		for _, ns := range d.ClusterState.NodeStates {
			if n := ns.ChitchatID.NodeID; n != "a" && n != "b" {
				return false
			}
		}
		return len(d.LiveNodes) == 2
	}}
	errs := make(chan error, 2)
	for _, p := range []*proc{a, b} {
		go func() {
			var drops map[string]float64
			_, err := follow(ctx, http.DefaultClient, p.url, &onlyAB, cond{"auth failures and refused plaintext > 0", func(stateDoc) bool {
				drops = droppedDatagrams(ctx, p.url)
				return drops["auth_failure"] > 0 && drops["plaintext_refused"] > 0
			}})
			if err != nil {
				err = fmt.Errorf("%s: %w (dropped: %v)", p.name, err, drops)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// The outsiders see nobody either.
	for _, p := range []*proc{c, d} {
		if s := getState(ctx, t, p.url); len(s.ClusterState.NodeStates) != 1 || len(s.LiveNodes) != 1 {
			t.Errorf("%s knows %s, want only itself", p.name, summary(s))
		}
	}

	// /v1/keyring: a and b hold the same key, c another, d none.
	ring := func(p *proc) keyringDoc {
		var k keyringDoc
		if _, _, body := httpGet(ctx, t, p.url+"/v1/keyring"); json.Unmarshal(body, &k) != nil {
			t.Fatalf("%s /v1/keyring: %s", p.name, body)
		}
		return k
	}
	ka, kb, kc, kd := ring(a), ring(b), ring(c), ring(d)
	if want := testKey(7).Fingerprint(); ka.Primary != want || !cmp.Equal(ka, kb) || ka.AcceptPlaintext || ka.SendPlaintext {
		t.Errorf("a's keyring %+v and b's %+v, want both [%s] and no plaintext", ka, kb, want)
	}
	if kc.Primary == ka.Primary || kc.Primary == "" {
		t.Errorf("c's keyring %+v, want another key than a's", kc)
	}
	if want := (keyringDoc{Keys: []string{}, AcceptPlaintext: true, SendPlaintext: true}); !cmp.Equal(kd, want) {
		t.Errorf("d's keyring %+v, want %+v", kd, want)
	}
}

// The migration steps: a node with a key that still sends and accepts
// plaintext gossips with a node that has no key yet.
func TestGossipPlaintextMigration(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	base := freePorts(t, 2)
	old := startNode(ctx, t, "no key", "--listen_addr", addr(base), "--node_id", "old", "--interval_ms", "50")
	migrating := startNode(ctx, t, "migrating", "--listen_addr", addr(base+1), "--node_id", "new", "--interval_ms", "50",
		"--seed", addr(base), "--gossip_key", testKey(7).String(), "--gossip_send_plaintext", "--gossip_accept_plaintext")
	for _, p := range []*proc{old, migrating} {
		mustWatch(ctx, t, p.url, liveDead(2, 0))
	}
}

// droppedDatagrams reads chitchat_datagrams_dropped_total by reason from
// /metrics; nil if it cannot.
func droppedDatagrams(ctx context.Context, base string) map[string]float64 {
	code, _, body, err := fetch(ctx, http.DefaultClient, base+"/metrics")
	if err != nil || code != http.StatusOK {
		return nil
	}
	drops := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `chitchat_datagrams_dropped_total{reason="`)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(rest, `"} `)
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			drops[reason] = v
		}
	}
	return drops
}

// /v1/keyring lists fingerprints, primary first, never a key.
func TestKeyringEndpoint(t *testing.T) {
	kr, err := chitchat.NewKeyring(testKey(1), testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Keyring, cfg.AcceptPlaintext = kr, true
	_, ts := testNodeWith(t, cfg)
	resp, body := get(t, ts.URL+"/v1/keyring")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("GET /v1/keyring = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got keyringDoc
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := keyringDoc{Primary: testKey(1).Fingerprint(), Keys: []string{testKey(1).Fingerprint(), testKey(2).Fingerprint()}, AcceptPlaintext: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keyring mismatch (-want +got):\n%s", diff)
	}
	for _, k := range []chitchat.Key{testKey(1), testKey(2)} {
		if strings.Contains(body, k.String()) || len(k.Fingerprint()) != 8 {
			t.Errorf("/v1/keyring shows a key, or a fingerprint that is not 8 hex digits: %s", body)
		}
	}
}
