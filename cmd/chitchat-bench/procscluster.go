package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// cluster is the set of demo processes of a -procs run.
type cluster struct {
	bin    string
	dir    string // each process's log goes to dir/node_i.log
	client *http.Client
	procs  []*proc
}

// proc is one demo process.
type proc struct {
	i        int
	cmd      *exec.Cmd
	url      string // its GET /
	logPath  string
	started  time.Time // just before exec
	answered time.Time // first HTTP answer on /
	exited   chan struct{}
	waitErr  error // set before exited is closed
}

// exitErr returns why the process ended, or nil while it runs.
func (p *proc) exitErr() error {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return errors.New("exit status 0")
		}
		return p.waitErr
	default:
		return nil
	}
}

// demoBuilds are the builds of cmd/chitchat-demo that -demo-build names.
// "sidecar" is the one a fleet should run (README, BENCHMARKS.md): static,
// so that the dynamic loader and libc are not mapped into every process
// (1.5 MB of resident memory each), and without crypto/tls (0.7 to 1.5 MB), which
// only https:// health checks use. "default" is a plain go build.
var demoBuilds = map[string]demoBuild{
	"sidecar": {env: []string{"CGO_ENABLED=0"}, tags: "chitchat_omit_tls"},
	"default": {},
}

func knownDemoBuild(name string) bool {
	_, ok := demoBuilds[name]
	return ok
}

type demoBuild struct {
	env  []string
	tags string
}

func (b demoBuild) String() string {
	s := strings.Join(append(slices.Clone(b.env), "go build"), " ")
	if b.tags != "" {
		s += " -tags " + b.tags
	}
	return s
}

// buildDemo builds cmd/chitchat-demo of this module into bin.
func buildDemo(ctx context.Context, bin string, b demoBuild) error {
	args := []string{"build", "-o", bin}
	if b.tags != "" {
		args = append(args, "-tags", b.tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "github.com/gossipkit/chitchat-go/cmd/chitchat-demo")...)
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building chitchat-demo with %v (run from inside the chitchat-go module, or pass -demo-bin): %w\n%s", b, err, out)
	}
	return nil
}

// freePorts returns n ports free on 127.0.0.1 for both TCP (the demo's
// HTTP API) and UDP (its gossip) at the time of the call: each is held
// until all are found, so they are distinct.
func freePorts(n int) ([]int, error) {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n+100 {
			return nil, fmt.Errorf("found %d of %d ports free for both TCP and UDP", len(ports), n)
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, l.Close)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue // taken for UDP: try another
		}
		closers = append(closers, u.Close)
		ports = append(ports, port)
	}
	return ports, nil
}

// start execs node i on port with args. Its output goes to a log file.
func (c *cluster) start(i, port int, args []string) (*proc, error) {
	p := &proc{i: i, url: fmt.Sprintf("http://127.0.0.1:%d/", port), exited: make(chan struct{}),
		logPath: filepath.Join(c.dir, nodeName(i)+".log")}
	log, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(c.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	// Killed with the harness even if it is killed itself.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	c.procs = append(c.procs, p)
	go func() {
		p.waitErr = p.cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitHTTP polls p's GET / every millisecond until it answers 200, and
// records when.
func (c *cluster) waitHTTP(ctx context.Context, p *proc, deadline time.Time) error {
	for {
		if err := p.exitErr(); err != nil {
			return fmt.Errorf("exited before answering HTTP: %w%s", err, c.logTail(p))
		}
		if _, err := c.state(ctx, p); err == nil {
			p.answered = time.Now()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no HTTP answer on %s at the time limit%s", p.url, c.logTail(p))
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// kill sends SIGKILL to p and reaps it.
func (c *cluster) kill(p *proc) error {
	if p.exitErr() != nil {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}

// stopAll kills and reaps every process still running.
func (c *cluster) stopAll() {
	for _, p := range c.procs {
		_ = c.kill(p)
	}
}

// logTail returns the end of p's log, to explain a failure.
func (c *cluster) logTail(p *proc) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; its log ends with:\n" + strings.TrimSpace(string(bytes.ToValidUTF8(b, nil)))
}
