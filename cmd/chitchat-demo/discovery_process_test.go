package main

// Service discovery against real processes: three nodes announcing
// services (flags and a service file), an HTTP check run against a server
// of the test, the Consul API and DNS (miekg's client, and dig when it is
// installed). Waits are blocking queries: nothing sleeps or polls.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// passingNodes is a condition on /v1/health/service/<name>: exactly these
// nodes, in order.
func passingNodes(names ...string) func([]serviceEntryDoc) bool {
	return func(entries []serviceEntryDoc) bool {
		var got []string
		for _, e := range entries {
			got = append(got, e.Node.Node)
		}
		return slices.Equal(got, names)
	}
}

// bigServiceFile writes a service file with n instances of "big".
func bigServiceFile(t *testing.T, n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`{"ID": "big-%d", "Name": "big", "Port": %d}`, i, 20000+i))
	}
	path := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(path, []byte(`{"services": [`+strings.Join(defs, ",")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServiceDiscoveryProcesses(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	// node_1's web is checked against this server; healthy decides.
	var healthy atomic.Bool
	healthy.Store(true)
	check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer check.Close()
	webFile := filepath.Join(t.TempDir(), "web.json")
	os.WriteFile(webFile, []byte(`{"service": {"name": "web", "id": "web-1", "port": 8081, "tags": ["v1"],
		"check": {"http": "`+check.URL+`/health", "interval": "200ms", "timeout": "1s"}}}`), 0o600)

	base, dnsBase := freePorts(t, 3), freePorts(t, 3)
	dnsAddr := func(i int) string { return addr(dnsBase + i) }
	nodes := startNodes(ctx, t, base, 3, func(i int) []string {
		args := []string{"--interval_ms", "50", "--initial_interval", "1s", "--dead_node_grace_period", "1m",
			"--dns_addr", dnsAddr(i)}
		switch i {
		case 0:
			return append(args, "--service", "web:8080:v1", "--service_file", bigServiceFile(t, 40))
		case 1:
			return append(args, "--service_file", webFile)
		default:
			return append(args, "--service", "web:8082:v2", "--service", "db:5432")
		}
	})
	n0 := nodes[0].url
	waitConsul(ctx, t, n0, "/v1/health/service/web?passing", "web passing on every node", passingNodes("node_0", "node_1", "node_2"))

	srv := func(names ...string) []string {
		out := []string{}
		for _, n := range names {
			i, _ := strconv.Atoi(strings.TrimPrefix(n, "node_"))
			out = append(out, fmt.Sprintf("%d %s.node.testing.consul.", 8080+i, n))
		}
		return out
	}
	if got := dnsAnswers(ctx, t, dnsAddr(0), "web.service.consul.", dns.TypeSRV); !slices.Equal(got, srv("node_0", "node_1", "node_2")) {
		t.Errorf("web SRV = %v, want every node's", got)
	}
	if got := dnsAnswers(ctx, t, dnsAddr(0), "v2.web.service.consul.", dns.TypeSRV); !slices.Equal(got, srv("node_2")) {
		t.Errorf("v2.web SRV = %v, want node_2's", got)
	}
	waitConsul(ctx, t, nodes[1].url, "/v1/internal/ui/nodes", "3 live nodes on node_1", liveNodes("node_0", "node_1", "node_2"))
	if got := dnsAnswers(ctx, t, dnsAddr(1), "node_2.node.consul.", dns.TypeA); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("node_2.node.consul. A on node_1 = %v, want 127.0.0.1", got)
	}

	// 40 instances do not fit 512 bytes: truncated over UDP, whole over TCP.
	r, err := dnsQuery(ctx, dnsAddr(0), "udp", "big.service.consul.", dns.TypeSRV, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 40 {
		t.Errorf("big over UDP: %d answers, tc=%v; want some of the 40 and TC", len(r.Answer), r.Truncated)
	}
	if r, err = dnsQuery(ctx, dnsAddr(0), "tcp", "big.service.consul.", dns.TypeSRV, 0); err != nil || r.Truncated || len(r.Answer) != 40 {
		t.Errorf("big over TCP: %v answers, tc=%v, %v; want all 40", len(r.Answer), r.Truncated, err)
	}
	for _, tt := range []struct {
		name  string
		rcode int
	}{{"nope.service.consul.", dns.RcodeNameError}, {"example.com.", dns.RcodeRefused}} {
		r, err := dnsQuery(ctx, dnsAddr(0), "udp", tt.name, dns.TypeA, 0)
		if err != nil || r.Rcode != tt.rcode {
			t.Errorf("%s: %v, %v; want %s", tt.name, r, err, dns.RcodeToString[tt.rcode])
		}
	}

	// node_1's check fails: its web leaves ?passing and DNS, then returns.
	start := time.Now()
	healthy.Store(false)
	entries := waitConsul(ctx, t, n0, "/v1/health/service/web", "node_1's web critical", func(es []serviceEntryDoc) bool {
		return len(es) == 3 && es[1].Checks[len(es[1].Checks)-1].Status == "critical"
	})
	t.Logf("node_1's failing check seen on node_0 after %v: %q", time.Since(start), entries[1].Checks[1].Output)
	if !strings.Contains(entries[1].Checks[1].Output, "503 Service Unavailable") {
		t.Errorf("check output %q, want the HTTP status", entries[1].Checks[1].Output)
	}
	waitConsul(ctx, t, n0, "/v1/health/service/web?passing", "node_1 out of ?passing", passingNodes("node_0", "node_2"))
	if got := dnsAnswers(ctx, t, dnsAddr(0), "web.service.consul.", dns.TypeSRV); !slices.Equal(got, srv("node_0", "node_2")) {
		t.Errorf("web SRV with node_1 failing = %v", got)
	}
	healthy.Store(true)
	waitConsul(ctx, t, n0, "/v1/health/service/web?passing", "node_1 back in ?passing", passingNodes("node_0", "node_1", "node_2"))

	// node_2 is killed: its services leave ?passing and DNS once it is
	// found dead; the node stays in the catalog, failed, as in Consul.
	start = time.Now()
	nodes[2].cmd.Process.Kill()
	nodes[2].wait(ctx)
	waitConsul(ctx, t, n0, "/v1/health/service/web?passing", "node_2 out of ?passing", passingNodes("node_0", "node_1"))
	t.Logf("killed node_2's web out of ?passing on node_0 after %v", time.Since(start))
	// Within the detection time: phi 8 over 50 ms heartbeats is about
	// 0.9 s of silence; 5 s leaves room for a loaded machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("killed node_2 out of ?passing after %v, want within the detection time (about 0.9 s, bound 5 s)", d)
	}
	if got := dnsAnswers(ctx, t, dnsAddr(0), "web.service.consul.", dns.TypeSRV); !slices.Equal(got, srv("node_0", "node_1")) {
		t.Errorf("web SRV with node_2 dead = %v", got)
	}
	for _, name := range []string{"db.service.consul.", "node_2.node.consul."} {
		if r, err := dnsQuery(ctx, dnsAddr(0), "udp", name, dns.TypeA, 0); err != nil || r.Rcode != dns.RcodeNameError {
			t.Errorf("%s with node_2 dead: %v, %v; want NXDOMAIN", name, r, err)
		}
	}
	all, _ := getConsul[[]serviceEntryDoc](ctx, t, n0, "/v1/health/service/web")
	if len(all) != 3 || all[2].Node.Node != "node_2" || all[2].Checks[0].Status != "critical" || all[2].Checks[0].CheckID != serfCheckID {
		t.Errorf("web without ?passing: %+v; want node_2's with a critical serfHealth", all)
	}

	// node_1 leaves (SIGTERM): gone from the catalog at once, unlike the
	// dead node_2, which is still listed.
	start = time.Now()
	if err := nodes[1].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitConsul(ctx, t, n0, "/v1/catalog/nodes", "node_1 gone", func(ns []nodeDoc) bool {
		return len(ns) == 2 && ns[0].Node == "node_0" && ns[1].Node == "node_2"
	})
	t.Logf("left node_1 gone from node_0's catalog %v after SIGTERM", time.Since(start))
	// At once: well under the detection time, so not the failure detector.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("left node_1 gone from the catalog %v after SIGTERM, want at once (under 500 ms, the detection time being about 0.9 s)", d)
	}
	// node_1 waits for node_2's acknowledgement until --leave_timeout, in
	// vain, then exits cleanly.
	if code := nodes[1].wait(ctx); code != 0 {
		t.Errorf("node_1 exited with status %d after SIGTERM, want 0", code)
	}
	if got := dnsAnswers(ctx, t, dnsAddr(0), "web.service.consul.", dns.TypeSRV); !slices.Equal(got, srv("node_0")) {
		t.Errorf("web SRV with node_1 left = %v", got)
	}
}

// getConsul fetches and decodes base+path.
func getConsul[T any](ctx context.Context, t *testing.T, base, path string) (T, uint64) {
	t.Helper()
	var v T
	code, index, body, err := consulGet(ctx, base, path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s%s = %d %s %v", base, path, code, body, err)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	return v, index
}

// The DNS server as dig sees it: answers, NXDOMAIN, REFUSED, and the
// retry over TCP of a truncated answer.
func TestDNSWithDig(t *testing.T) {
	t.Parallel()
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig is not installed (Debian: apt-get install dnsutils; .ci/run installs it when run as root)")
	}
	ctx := testContext(t)
	dnsPort := freePorts(t, 1)
	startNode(ctx, t, "node_0", "--listen_addr", addr(freePorts(t, 1)), "--node_id", "node_0", "--interval_ms", "50",
		"--dns_addr", addr(dnsPort), "--dns_ttl", "5s", "--service", "web:8080:v1", "--service_file", bigServiceFile(t, 40))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, dig, append([]string{"@127.0.0.1", "-p", strconv.Itoa(dnsPort), "+time=5", "+tries=1"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The services are the node's own: in its catalog once it starts.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"+short", "node_0.node.consul."}, []string{"127.0.0.1\n"}},
		{[]string{"+short", "web.service.consul."}, []string{"127.0.0.1\n"}},
		{[]string{"+short", "_web._tcp.service.consul.", "SRV"}, []string{"1 1 8080 node_0.node.testing.consul.\n"}},
		{[]string{"+noall", "+answer", "v1.web.service.consul.", "SRV"}, []string{"v1.web.service.consul.\t5\tIN\tSRV\t1 1 8080 node_0.node.testing.consul."}},
		{[]string{"nope.service.consul."}, []string{"status: NXDOMAIN", "flags: qr aa rd;", "AUTHORITY: 1", "SOA\tns.consul. hostmaster.consul."}},
		{[]string{"example.com."}, []string{"status: REFUSED"}},
		{[]string{"+noedns", "big.service.consul.", "SRV"}, []string{";; Truncated, retrying in TCP mode.", "ANSWER: 40,", "(TCP)"}},
	} {
		out := run(tt.args...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("dig %s: no %q in:\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
	}
}
