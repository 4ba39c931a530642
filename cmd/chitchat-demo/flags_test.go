package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFlagDefaults(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream chitchat-test's settings (spec §11.1).
	if o.listen.String() != "127.0.0.1:10000" || o.public != o.listen || o.interval != 500*time.Millisecond ||
		o.clusterID != "testing" || o.deadGrace != 10*time.Second || o.tombGrace != 60*time.Second {
		t.Errorf("defaults = %+v", o)
	}
	if !regexp.MustCompile(`^server:127\.0\.0\.1:10000-[a-z]+-[a-z]+-[a-z]+-[a-z]+$`).MatchString(o.nodeID) {
		t.Errorf("default node id %q is not server:{public_addr}-{memorable id}", o.nodeID)
	}
	cfg := o.config(nil)
	if err := cfg.Validate(); err != nil {
		t.Errorf("the default configuration is invalid: %v", err)
	}
	if cfg.FailureDetector.DeadNodeGracePeriod != 10*time.Second || cfg.MarkedForDeletionGracePeriod != 60*time.Second {
		t.Errorf("grace periods = %v, %v; want 10s, 60s", cfg.FailureDetector.DeadNodeGracePeriod, cfg.MarkedForDeletionGracePeriod)
	}
}

func TestFlagsParse(t *testing.T) {
	o, err := parseNodeFlags([]string{
		"--listen_addr", "0.0.0.0:7000", "--public_addr=[::1]:7001", "--node_id", "n1",
		"--seed", "localhost:7000", "--seed=10.0.0.1:7000", "-interval_ms", "50",
		"--cluster_id", "prod", "--dead_node_grace_period", "1m", "--marked_for_deletion_grace_period", "2h",
		"--phi_threshold", "5.5", "--initial_interval", "100ms", "--log_level", "DEBUG",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := nodeOptions{
		nodeID: "n1", seeds: []string{"localhost:7000", "10.0.0.1:7000"}, interval: 50 * time.Millisecond,
		clusterID: "prod", deadGrace: time.Minute, tombGrace: 2 * time.Hour, phi: 5.5, initial: 100 * time.Millisecond,
		logLevel: -4,
	}
	if diff := cmp.Diff(want, o, cmp.AllowUnexported(nodeOptions{}), cmpopts.IgnoreFields(nodeOptions{}, "listen", "public")); diff != "" {
		t.Errorf("options mismatch (-want +got):\n%s", diff)
	}
	if o.listen.String() != "0.0.0.0:7000" || o.public.String() != "[::1]:7001" {
		t.Errorf("listen %v, public %v", o.listen, o.public)
	}
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
		{"--listen_addr", "127.0.0.1:20000", "--node_id", "node_0", "--interval_ms", "100", "--log_level", "debug"},
		{"--listen_addr", "127.0.0.1:20001", "--node_id", "node_1", "--interval_ms", "100", "--seed", "127.0.0.1:20000", "--log_level", "debug"},
		{"--listen_addr", "127.0.0.1:20002", "--node_id", "node_2", "--interval_ms", "100", "--seed", "127.0.0.1:20000", "--log_level", "debug"},
	}
	for i, w := range want {
		if diff := cmp.Diff(w, o.nodeArgs(i)); diff != "" {
			t.Errorf("node %d args mismatch (-want +got):\n%s", i, diff)
		}
	}
}
