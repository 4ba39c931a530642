package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// procsResult is the line printed by -procs: the footprint of N real
// chitchat-demo processes on 127.0.0.1 (issue 15's table), measured as
// upstream's chitchat-test is: one seed, --interval_ms from -interval.
type procsResult struct {
	System     string   `json:"system"`
	Version    string   `json:"version"`
	Mode       string   `json:"mode"` // "procs"
	N          int      `json:"n"`
	IntervalMS int64    `json:"interval_ms"`
	DemoArgs   []string `json:"demo_args"` // passed through after --
	// DemoBuild is how the demo was built ("sidecar: CGO_ENABLED=0 go
	// build -tags chitchat_omit_tls"), or the binary given by -demo-bin.
	DemoBuild string `json:"demo_build"`

	// Processes start one after the other, each once the previous one
	// answers GET /. Start-up: from just before exec to the first HTTP
	// answer on /, polled every millisecond; median and largest.
	StartupMSMedian *float64 `json:"startup_ms_median"`
	StartupMSMax    *float64 `json:"startup_ms_max"`
	// From the last process answering HTTP until every process lists
	// every process in live_nodes (each GET / polled in turn).
	ConvergeS *float64 `json:"converge_s"`
	// After -warmup, over -procs-steady of steady state: utime+stime of
	// every process (/proc/PID/stat), per process per second; and VmRSS
	// (/proc/PID/status) at the end of it, median and largest.
	SteadyS      float64  `json:"steady_s"`
	CPUSPerNodeS *float64 `json:"cpu_s_per_node_s"`
	RSSKBMedian  *float64 `json:"rss_kb_median"`
	RSSKBMax     *float64 `json:"rss_kb_max"`
	// The last process killed with SIGKILL: time until each survivor's
	// GET / lists it in dead_nodes; median and last survivor.
	DetectMedianS *float64 `json:"detect_median_s"`
	DetectLastS   *float64 `json:"detect_last_s"`

	GoVersion  string   `json:"go_version"` // the bench's (the demo is built with the same toolchain)
	GOMAXPROCS int      `json:"gomaxprocs"` // the bench's; the demo processes inherit the environment
	Errors     []string `json:"errors"`
}

// stateDoc is what -procs reads of a demo node's GET / document.
type stateDoc struct {
	LiveNodes []struct {
		NodeID string `json:"node_id"`
	} `json:"live_nodes"`
	DeadNodes []struct {
		NodeID string `json:"node_id"`
	} `json:"dead_nodes"`
}

func (d stateDoc) lists(live bool, name string) bool {
	ids := d.DeadNodes
	if live {
		ids = d.LiveNodes
	}
	for _, id := range ids {
		if id.NodeID == name {
			return true
		}
	}
	return false
}

// runProcs runs the -procs mode. Every process it starts is killed and
// reaped before it returns, whatever happens, and on SIGINT or SIGTERM.
func runProcs(o options, logf func(string, ...any)) *procsResult {
	res := &procsResult{System: "chitchat-go", Version: version(), Mode: "procs", N: o.procs,
		IntervalMS: o.interval.Milliseconds(), DemoArgs: o.demoArgs, SteadyS: o.procsSteady.Seconds(),
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Errors: []string{}}
	if res.DemoArgs == nil {
		res.DemoArgs = []string{}
	}
	fail := func(format string, a ...any) *procsResult {
		res.Errors = append(res.Errors, fmt.Sprintf(format, a...))
		return res
	}
	if o.interval < time.Millisecond || o.interval%time.Millisecond != 0 {
		return fail("-interval %v: the demo takes whole milliseconds", o.interval)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "chitchat-bench-procs-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	bin := o.demoBin
	res.DemoBuild = "given: " + bin
	if bin == "" {
		bin = filepath.Join(dir, "chitchat-demo")
		t := time.Now()
		b := demoBuilds[o.demoBuild]
		res.DemoBuild = o.demoBuild + ": " + b.String()
		if err := buildDemo(ctx, bin, b); err != nil {
			return fail("%v", err)
		}
		logf("built chitchat-demo in %.1fs", time.Since(t).Seconds())
	}
	ports, err := freePorts(o.procs)
	if err != nil {
		return fail("picking ports: %v", err)
	}

	c := &cluster{bin: bin, dir: dir, client: &http.Client{Timeout: time.Second}}
	defer c.stopAll()
	seed := fmt.Sprintf("127.0.0.1:%d", ports[0])
	deadline := time.Now().Add(o.timeout)

	// Start-up, one process after the other.
	startup := make([]float64, 0, o.procs)
	for i, port := range ports {
		args := []string{"--listen_addr", fmt.Sprintf("127.0.0.1:%d", port), "--node_id", nodeName(i),
			"--interval_ms", fmt.Sprint(res.IntervalMS)}
		if i > 0 {
			args = append(args, "--seed", seed)
		}
		p, err := c.start(i, port, append(args, o.demoArgs...))
		if err != nil {
			return fail("starting node %d: %v", i, err)
		}
		if err := c.waitHTTP(ctx, p, deadline); err != nil {
			return fail("node %d: %v", i, err)
		}
		startup = append(startup, float64(p.answered.Sub(p.started).Microseconds())/1000)
	}
	slices.Sort(startup)
	res.StartupMSMedian, res.StartupMSMax = num(median(startup), 1), num(startup[len(startup)-1], 1)
	lastUp := c.procs[len(c.procs)-1].answered
	logf("procs=%d: started; start-up median %.1f ms, max %.1f ms", o.procs, *res.StartupMSMedian, *res.StartupMSMax)

	// Convergence: every process lists every process live.
	all := make([]int, o.procs)
	for i := range all {
		all[i] = i
	}
	at, err := c.pollUntil(ctx, all, deadline, func(d stateDoc) bool {
		for i := range o.procs {
			if !d.lists(true, nodeName(i)) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fail("convergence: %v", err)
	}
	res.ConvergeS = num(slices.MaxFunc(at, time.Time.Compare).Sub(lastUp).Seconds(), 4)
	logf("procs=%d: converged %.3fs after the last process answered", o.procs, *res.ConvergeS)

	// Steady state: only the processes run; the harness sleeps.
	c.client.CloseIdleConnections()
	if err := sleepCtx(ctx, o.warmup); err != nil {
		return fail("%v", err)
	}
	cpu0, err := c.cpuTicks()
	if err != nil {
		return fail("%v", err)
	}
	w0 := time.Now()
	if err := sleepCtx(ctx, o.procsSteady); err != nil {
		return fail("%v", err)
	}
	cpu1, err := c.cpuTicks()
	if err != nil {
		return fail("%v", err)
	}
	w1 := time.Now()
	rss, err := c.rssKB()
	if err != nil {
		return fail("%v", err)
	}
	res.CPUSPerNodeS = num(float64(cpu1-cpu0)/float64(clockTicks())/(float64(o.procs)*w1.Sub(w0).Seconds()), 6)
	slices.Sort(rss)
	res.RSSKBMedian, res.RSSKBMax = num(median(rss), 0), num(rss[len(rss)-1], 0)
	logf("procs=%d: %.6f cpu-s/node/s, RSS median %.0f kB", o.procs, *res.CPUSPerNodeS, *res.RSSKBMedian)

	// Detection: the last process is killed.
	victim := c.procs[len(c.procs)-1]
	tk := time.Now()
	if err := c.kill(victim); err != nil {
		return fail("killing node %d: %v", victim.i, err)
	}
	at, err = c.pollUntil(ctx, all[:o.procs-1], tk.Add(o.timeout), func(d stateDoc) bool {
		return d.lists(false, nodeName(victim.i))
	})
	if err != nil {
		return fail("detection: %v", err)
	}
	lat := make([]float64, len(at))
	for k, t := range at {
		lat[k] = t.Sub(tk).Seconds()
	}
	slices.Sort(lat)
	res.DetectMedianS, res.DetectLastS = num(median(lat), 4), num(lat[len(lat)-1], 4)
	logf("procs=%d: killed node seen dead: median %.3fs, last %.3fs", o.procs, *res.DetectMedianS, *res.DetectLastS)
	return res
}

// pollUntil reads GET / of each of the nodes in turn, again and again,
// until pred holds for every one (once it held for a node, that node is
// not read again), and returns when it first held for each.
func (c *cluster) pollUntil(ctx context.Context, nodes []int, deadline time.Time, pred func(stateDoc) bool) ([]time.Time, error) {
	at := make([]time.Time, len(nodes))
	left := len(nodes)
	for left > 0 {
		for k, i := range nodes {
			if !at[k].IsZero() {
				continue
			}
			p := c.procs[i]
			if err := p.exitErr(); err != nil {
				return nil, fmt.Errorf("node %d exited: %w%s", i, err, c.logTail(p))
			}
			d, err := c.state(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				continue // a slow answer: try again on the next pass
			}
			if pred(d) {
				at[k] = time.Now()
				left--
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d nodes still not there at the time limit", left, len(nodes))
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return nil, err
		}
	}
	return at, nil
}

// state reads and decodes node p's GET /.
func (c *cluster) state(ctx context.Context, p *proc) (stateDoc, error) {
	var d stateDoc
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return d, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return d, fmt.Errorf("GET %s: %s", p.url, resp.Status)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
