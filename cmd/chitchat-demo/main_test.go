package main

// Helpers of the process tests: they build the binary once, start real
// processes on free ports, and wait on events (a process's output, its exit,
// the /events stream of a node) under a context deadline. Nothing sleeps or
// polls.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoBin is the binary under test, built by TestMain, with the overlay
// build next to it.
var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chitchat-demo-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "chitchat-demo")
	// Without -race: the handlers' concurrency is covered by the in-process
	// tests, and a dozen race-instrumented processes would crowd 2 cores.
	// The overlay build goes next to it, where a node given --overlay
	// finds it (overlay_handoff.go).
	for _, args := range [][]string{{"-o", demoBin}, {"-tags", "overlay", "-o", filepath.Join(dir, overlayBinaryName)}} {
		build := exec.Command("go", append(append([]string{"build"}, args...), ".")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building chitchat-demo:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testTimeout bounds each process test; a healthy run needs a fraction.
const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Free ports. Tests of one run take ports from a shared registry so that
// parallel tests never pick the same ones, and pick them below the kernel's
// ephemeral range so that no outgoing connection takes them meanwhile.
var ports struct {
	sync.Mutex
	taken map[int]bool
}

// freePorts returns the first of n consecutive ports free for both TCP and
// UDP on 127.0.0.1.
func freePorts(t testing.TB, n int) int {
	t.Helper()
	lo, hi := 20000, ephemeralLow()-n
	ports.Lock()
	defer ports.Unlock()
	if ports.taken == nil {
		ports.taken = make(map[int]bool)
	}
	for range 200 {
		base := lo + rand.IntN(hi-lo)
		if portsFree(base, n) {
			for p := base; p < base+n; p++ {
				ports.taken[p] = true
			}
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports in [%d, %d)", n, lo, hi)
	return 0
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		if ports.taken[p] {
			return false
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

// ephemeralLow is the start of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 25000 {
				return lo
			}
		}
	}
	return 32768
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// proc is a chitchat-demo process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *syncBuffer
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	url    string
}

// startProc starts the binary with args. The process is killed at the end
// of the test if it still runs, and its log is shown if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCommand(t, name, exec.Command(demoBin, args...))
}

// startCommand is startProc for a command line of choice (the binary
// behind a wrapper such as "ip netns exec").
func startCommand(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	args := cmd.Args[1:]
	p := &proc{t: t, name: name, cmd: cmd, lines: make(chan string, 256),
		stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads that much output; never block the process
			}
		}
		close(p.lines)
		p.err = p.cmd.Wait() // after the pipe is drained, as Wait requires
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("--- %s %s: stderr (last 40 lines):\n%s", name, strings.Join(args, " "), p.stderr.tail(40))
		}
	})
	return p
}

// startNode starts a node and waits until it serves.
func startNode(ctx context.Context, t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := startProc(t, name, args...)
	waitServing(ctx, p)
	return p
}

// waitServing waits until each node printed its ready line (the one the
// cluster launcher waits for too), and sets its url.
func waitServing(ctx context.Context, nodes ...*proc) {
	for _, p := range nodes {
		p.t.Helper()
		p.url = p.waitLine(ctx, readyLine)[1]
	}
}

// seededArgs is the command line of node_i of a local cluster on ports
// base, base+1, …: node_i listens on base+i and, unless it is node_0
// itself, is seeded with node_0; extra follows.
func seededArgs(base, i int, extra ...string) []string {
	args := []string{"--listen_addr", addr(base + i), "--node_id", "node_" + strconv.Itoa(i)}
	if i > 0 {
		args = append(args, "--seed", addr(base))
	}
	return append(args, extra...)
}

// startNodes starts n nodes with seededArgs(base, i, extra(i)...) and waits
// until each one serves.
func startNodes(ctx context.Context, t *testing.T, base, n int, extra func(i int) []string) []*proc {
	t.Helper()
	nodes := make([]*proc, n)
	for i := range n {
		nodes[i] = startProc(t, "node_"+strconv.Itoa(i), seededArgs(base, i, extra(i)...)...)
	}
	waitServing(ctx, nodes...)
	return nodes
}

// waitLine returns the submatches of the first stdout line matching re.
func (p *proc) waitLine(ctx context.Context, re *regexp.Regexp) []string {
	p.t.Helper()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.exited
				p.t.Fatalf("%s exited (%v) before printing a line matching %q", p.name, p.err, re)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-ctx.Done():
			p.t.Fatalf("%s: no line matching %q: %v", p.name, re, ctx.Err())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(ctx context.Context) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.t.Fatalf("%s did not exit: %v", p.name, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

// stop sends sig and checks that the process exits with status 0.
func (p *proc) stop(ctx context.Context, sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	if code := p.wait(ctx); code != 0 {
		p.t.Errorf("%s exited with status %d after %v, want 0", p.name, code, sig)
	}
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed (and replaced) at each Write; nil until waited on
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// waitCount waits until re matches at least n times in what was written,
// woken by each Write, and returns the matches; or fails when ctx ends.
func (s *syncBuffer) waitCount(ctx context.Context, t *testing.T, re *regexp.Regexp, n int) []string {
	t.Helper()
	for {
		s.mu.Lock()
		got := re.FindAllString(s.b.String(), -1)
		if len(got) >= n {
			s.mu.Unlock()
			return got
		}
		if s.written == nil {
			s.written = make(chan struct{})
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-ctx.Done():
			t.Fatalf("%d of %d lines matching %q: %v", len(got), n, re, ctx.Err())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// httpGet fetches url and returns the status, content type and body.
func httpGet(ctx context.Context, t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	code, ctype, b, err := fetch(ctx, http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	return code, ctype, b
}

// fetch is httpGet with a client of choice, for any goroutine.
func fetch(ctx context.Context, client *http.Client, url string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, nil
}

// getState fetches and decodes GET /.
func getState(ctx context.Context, t *testing.T, base string) stateDoc {
	t.Helper()
	code, _, b := httpGet(ctx, t, base+"/")
	if code != http.StatusOK {
		t.Fatalf("GET %s/: status %d: %s", base, code, b)
	}
	var d stateDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("GET %s/: %v", base, err)
	}
	return d
}

// mustStatusTrue calls a mutation endpoint and checks {"status":true}.
func mustStatusTrue(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	code, _, b := httpGet(ctx, t, url)
	var r struct{ Status bool }
	if err := json.Unmarshal(b, &r); code != http.StatusOK || err != nil || !r.Status {
		t.Fatalf("GET %s = %d %s, want 200 {\"status\":true}", url, code, b)
	}
}

// watch follows base's /events stream until every condition held, in
// order: each one is checked from the event after the previous one held.
// It returns the document that satisfied the last condition, or an error
// naming the first condition not met when ctx ends.
func watch(ctx context.Context, base string, conds ...cond) (stateDoc, error) {
	return follow(ctx, http.DefaultClient, base, nil, conds...)
}

// follow is watch through client, and with an invariant: if always is not
// nil, it must hold at every event until the last condition held.
func follow(ctx context.Context, client *http.Client, base string, always *cond, conds ...cond) (stateDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	if err != nil {
		return stateDoc{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return stateDoc{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var last stateDoc
	for len(conds) > 0 && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		last = stateDoc{}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			return last, fmt.Errorf("%s/events: %v", base, err)
		}
		if always != nil && !always.f(last) {
			return last, fmt.Errorf("%s/events: %s no longer holds while waiting for %s; state: %s", base, always.desc, conds[0].desc, summary(last))
		}
		for len(conds) > 0 && conds[0].f(last) {
			conds = conds[1:]
		}
	}
	if len(conds) == 0 {
		return last, nil
	}
	return last, fmt.Errorf("%s/events: still waiting for %s (%v); last state: %s", base, conds[0].desc, ctx.Err(), summary(last))
}

// mustWatch is watch for the test goroutine.
func mustWatch(ctx context.Context, t *testing.T, base string, conds ...cond) stateDoc {
	t.Helper()
	d, err := watch(ctx, base, conds...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cond is a named condition on a node's state.
type cond struct {
	desc string
	f    func(stateDoc) bool
}

func liveDead(live, dead int) cond {
	return cond{fmt.Sprintf("%d live and %d dead nodes", live, dead), func(d stateDoc) bool {
		return len(d.LiveNodes) == live && len(d.DeadNodes) == dead
	}}
}

func hasKey(node, key, value string) cond {
	return cond{fmt.Sprintf("%s has %s=%s", node, key, value), func(d stateDoc) bool {
		for _, ns := range d.ClusterState.NodeStates {
			if ns.ChitchatID.NodeID == node && ns.KeyValues[key].Value == value && ns.KeyValues[key].Status == "Set" {
				return true
			}
		}
		return false
	}}
}

// summary renders a state briefly for failure messages.
func summary(d stateDoc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "live=[")
	for _, id := range d.LiveNodes {
		fmt.Fprintf(&b, " %s:%d", id.NodeID, id.GenerationID)
	}
	fmt.Fprintf(&b, " ] dead=[")
	for _, id := range d.DeadNodes {
		fmt.Fprintf(&b, " %s:%d", id.NodeID, id.GenerationID)
	}
	fmt.Fprintf(&b, " ] left=[")
	for _, id := range d.LeftNodes {
		fmt.Fprintf(&b, " %s:%d", id.NodeID, id.GenerationID)
	}
	fmt.Fprintf(&b, " ] states=[")
	for _, ns := range d.ClusterState.NodeStates {
		fmt.Fprintf(&b, " %s:%d(hb %d, %d keys)", ns.ChitchatID.NodeID, ns.ChitchatID.GenerationID, ns.Heartbeat, len(ns.KeyValues))
	}
	b.WriteString(" ]")
	return b.String()
}

// startCluster starts n nodes as upstream's CLI test does:
// node_0 with --interval_ms 120, the others with 50 and node_0 as seed,
// written as seedHost:port. It waits until each one serves.
func startCluster(ctx context.Context, t *testing.T, n int, seedHost string, extra ...string) []*proc {
	t.Helper()
	base := freePorts(t, n)
	nodes := make([]*proc, n)
	for i := range n {
		args := []string{"--listen_addr", addr(base + i), "--node_id", "node_" + strconv.Itoa(i)}
		if i == 0 {
			args = append(args, "--interval_ms", "120")
		} else {
			args = append(args, "--interval_ms", "50", "--seed", seedHost+":"+strconv.Itoa(base))
		}
		nodes[i] = startProc(t, "node_"+strconv.Itoa(i), append(args, extra...)...)
	}
	waitServing(ctx, nodes...)
	return nodes
}
