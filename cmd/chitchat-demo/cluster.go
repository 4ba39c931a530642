package main

// The cluster subcommand runs a local cluster: it starts its own binary N
// times as child processes, node i on 127.0.0.1:base_port+i, every node but
// node_0 seeded with node_0.
//
//	launcher ── start ──▶ node_0 … node_{n-1}   (stdout: ready line; stderr: logs, prefixed and copied)
//	         ◀─ ready ──  each child prints "node … serving http://…" once bound
//	         ── prints the URLs, waits for SIGINT/SIGTERM
//	         ── SIGTERM to every child (each leaves the cluster, then stops),
//	            waits ≤ --leave_timeout + stopTimeout, SIGKILL to stragglers, reaps all
//
// On Linux the children also get SIGKILL if the launcher dies without
// stopping them (Pdeathsig), so no node outlives it.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Launcher timings.
const (
	readyTimeout = 30 * time.Second // every node must be serving by then
	stopTimeout  = 5 * time.Second  // SIGTERM grace before SIGKILL, on top of the nodes' --leave_timeout
)

// clusterOptions is the launcher's validated command line.
type clusterOptions struct {
	n           int
	basePort    uint16
	host        netip.Addr
	interval    string          // --interval_ms, passed to every node
	passthrough []string        // node flags after "--", passed to every node
	stopGrace   time.Duration   // how long a node may take to stop after SIGTERM
	overlay     *clusterOverlay // with --overlay: node 0's ids, IP and port, the others' derive
	dnsBasePort uint16          // node i serves DNS on dnsBasePort+i; 0: no DNS
	domain      string          // the nodes' --domain
}

// clusterFlags holds the raw text of the launcher's flags.
type clusterFlags struct{ n, base, host, interval, dnsBase stringValue }

func newClusterFlagSet() (*flag.FlagSet, *clusterFlags) {
	cf := &clusterFlags{
		n:        stringValue{s: "5"},
		base:     stringValue{s: "10000"},
		host:     stringValue{s: "127.0.0.1"},
		interval: stringValue{s: defaultIntervalMS},
		dnsBase:  stringValue{s: defaultDNSBasePort},
	}
	fs := flag.NewFlagSet("chitchat-demo cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&cf.n, "n", "`number` of nodes")
	fs.Var(&cf.base, "base_port", "`port` of node_0; node i listens on base_port+i (UDP and TCP)")
	fs.Var(&cf.host, "host", "`ip` every node listens on")
	fs.Var(&cf.interval, "interval_ms", "gossip interval of every node in `milliseconds`")
	fs.Var(&cf.dnsBase, "dns_base_port", "`port` of node_0's DNS server (UDP and TCP); node i serves DNS on dns_base_port+i; 0 turns DNS off")
	return fs, cf
}

func printClusterUsage(w io.Writer) {
	fmt.Fprint(w, `chitchat-demo cluster runs a local chitchat cluster: N nodes on one machine,
node_i on host:base_port+i, each seeded with node_0. Ctrl-C (or SIGTERM) stops
them all: each node leaves the cluster (--leave_timeout), then exits.

Usage:
  chitchat-demo cluster [flags] [-- node flags]

Flags:
`)
	fs, _ := newClusterFlagSet()
	printFlags(w, fs)
	fmt.Fprint(w, `
Node flags after "--" are passed to every node, for example:
  chitchat-demo cluster -n 3 -- --dead_node_grace_period 30s --log_level debug
With --overlay, --overlay_node_id, --overlay_ip and --wg_listen_port are
node_0's; node i gets each plus i:
  chitchat-demo cluster -n 3 -- --overlay --overlay_node_id 1 --overlay_ip 10.200.0.1
runs overlay nodes 1, 2, 3 on 10.200.0.1, .2, .3, WireGuard ports 51820..51822.
`)
}

func parseClusterFlags(args []string) (clusterOptions, error) {
	var o clusterOptions
	if i := slices.Index(args, "--"); i >= 0 {
		args, o.passthrough = args[:i], args[i+1:]
	}
	fs, cf := newClusterFlagSet()
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	if err := parseAll(fs, args, bad); err != nil {
		return o, err
	}
	if v, err := strconv.Atoi(cf.n.s); err != nil || v < 1 || v > 200 {
		bad("-n %q: must be a number of nodes between 1 and 200", cf.n.s)
	} else {
		o.n = v
	}
	if v, err := strconv.ParseUint(cf.base.s, 10, 16); err != nil || v == 0 || o.n > 0 && int(v)+o.n-1 > 65535 {
		bad("--base_port %q: must be a port such that base_port..base_port+n-1 lie in 1..65535", cf.base.s)
	} else {
		o.basePort = uint16(v)
	}
	if a, err := netip.ParseAddr(cf.host.s); err != nil || a.IsUnspecified() {
		bad("--host %q: must be an IP address every node can be reached on, such as 127.0.0.1", cf.host.s)
	} else {
		o.host = a.Unmap()
	}
	o.interval = cf.interval.s
	o.dnsBasePort = parseDNSBasePort(cf.dnsBase.s, o.n, o.basePort, bad)
	for _, a := range o.passthrough {
		for _, f := range []string{"listen_addr", "public_addr", "node_id", "dns_addr"} {
			if a == "-"+f || a == "--"+f || strings.HasPrefix(a, "-"+f+"=") || strings.HasPrefix(a, "--"+f+"=") {
				bad("--%s cannot be passed to the nodes: the launcher sets it for each node (use --host and --base_port)", f)
			}
		}
	}
	if len(problems) == 0 {
		// Check the node flags once, up front, rather than N times later.
		no, err := parseNodeFlags(o.nodeArgs(0))
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			problems = append(problems, err)
		}
		o.stopGrace = no.leaveTimeout + stopTimeout
		o.domain = no.catalog.domain
		// The overlay flags given are node 0's; each node gets its own.
		gossip := [2]int{int(o.basePort), int(o.basePort) + o.n - 1}
		if o.overlay = planOverlay(no.overlay, o.n, gossip, bad); o.overlay != nil {
			o.passthrough = withoutFlags(o.passthrough, perNodeOverlayFlags)
		}
	}
	return o, errors.Join(problems...)
}

func (o clusterOptions) addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(o.host, o.basePort+uint16(i))
}

func (o clusterOptions) name(i int) string { return "node_" + strconv.Itoa(i) }

// nodeArgs is the command line of node i.
func (o clusterOptions) nodeArgs(i int) []string {
	args := []string{"--listen_addr", o.addr(i).String(), "--node_id", o.name(i), "--interval_ms", o.interval}
	if i > 0 {
		args = append(args, "--seed", o.addr(0).String())
	}
	if o.dnsBasePort > 0 {
		args = append(args, "--dns_addr", o.dnsAddr(i).String())
	}
	args = append(args, o.passthrough...)
	if o.overlay != nil {
		args = append(args, o.overlay.args(i)...)
	}
	return args
}

// checkPorts reports every port of the cluster that is already taken.
func (o clusterOptions) checkPorts() error {
	var errs []error
	for i := range o.n {
		a := o.addr(i)
		if ln, err := net.Listen("tcp", a.String()); err != nil {
			errs = append(errs, fmt.Errorf("%v/TCP (%s) is not available: %v", a, o.name(i), stripOpErr(err)))
		} else {
			ln.Close()
		}
		if pc, err := net.ListenPacket("udp", a.String()); err != nil {
			errs = append(errs, fmt.Errorf("%v/UDP (%s) is not available: %v", a, o.name(i), stripOpErr(err)))
		} else {
			pc.Close()
		}
		if o.dnsBasePort > 0 {
			errs = append(errs, checkDNSPorts(o.dnsAddr(i), o.name(i))...)
		}
		if o.overlay != nil && o.overlay.wgPort != 0 {
			wg := netip.AddrPortFrom(o.host, uint16(o.overlay.wgPort+i))
			if pc, err := net.ListenPacket("udp", wg.String()); err != nil {
				errs = append(errs, fmt.Errorf("%v/UDP (%s's WireGuard port) is not available: %v", wg, o.name(i), stripOpErr(err)))
			} else {
				pc.Close()
			}
		}
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("stop what uses these ports or pick another --base_port (or --dns_base_port)"))
	}
	return errors.Join(errs...)
}

func stripOpErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// child is one node process.
type child struct {
	name   string
	cmd    *exec.Cmd
	ready  chan string   // receives the node's base URL once it serves
	exited chan struct{} // closed once the process has been reaped
	err    error         // Wait's result, valid after exited
}

var readyLine = regexp.MustCompile(`serving (http://\S+)/ `)

func runCluster(args []string, stdout, stderr io.Writer) int {
	o, err := parseClusterFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		printClusterUsage(stdout)
		return exitOK
	}
	if err != nil {
		reportFlagErrors(stderr, "chitchat-demo cluster", err)
		return exitUsage
	}
	if o.overlay != nil && !overlayLinked {
		// The launcher and so its nodes run in the overlay build.
		return osHandoff.run(append([]string{"cluster"}, args...), stderr, "chitchat-demo cluster")
	}
	if err := o.checkPorts(); err != nil {
		reportProblems(stderr, "chitchat-demo cluster: cannot start the nodes:", err)
		return exitError
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "chitchat-demo cluster: cannot find my own binary to start the nodes: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := &prefixWriter{w: stderr}
	width := len(o.name(o.n - 1))
	children := make([]*child, 0, o.n)
	defer func() { stopChildren(children, o.stopGrace, stderr) }()
	for i := range o.n {
		c, err := startChild(exe, o.name(i), width, o.nodeArgs(i), out)
		if err != nil {
			fmt.Fprintf(stderr, "chitchat-demo cluster: %v\n", err)
			return exitError
		}
		children = append(children, c)
	}

	// Wait until every node serves, or one of them fails to start.
	urls := make([]string, len(children))
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	for i, c := range children {
		select {
		case urls[i] = <-c.ready:
		case <-c.exited:
			fmt.Fprintf(stderr, "chitchat-demo cluster: %s exited before serving (%v); see its log above\n", c.name, c.err)
			return exitError
		case <-ctx.Done():
			return exitOK
		case <-timeout.C:
			fmt.Fprintf(stderr, "chitchat-demo cluster: %s is not serving after %v; stopping\n", c.name, readyTimeout)
			return exitError
		}
	}
	fmt.Fprintf(stdout, "chitchat-demo: %d nodes running (gossip every %sms):\n", len(children), o.interval)
	for i, c := range children {
		fmt.Fprintf(stdout, "  %-*s  pid %-7d %s/\n", width, c.name, c.cmd.Process.Pid, urls[i])
	}
	if o.dnsBasePort > 0 {
		fmt.Fprintf(stdout, "DNS: node_i on %v+i, such as: dig @%v -p %d node_0.node.%s\n", o.dnsAddr(0), o.host, o.dnsBasePort, o.domain)
	}
	fmt.Fprintf(stdout, "Watch the cluster live: %s/ui\nPress Ctrl-C to stop every node.\n", urls[0])

	// Run until a signal, or until every node is gone.
	running := len(children)
	exits := make(chan *child)
	for _, c := range children {
		go func() {
			<-c.exited
			select {
			case exits <- c:
			case <-ctx.Done():
			}
		}()
	}
	for running > 0 {
		select {
		case <-ctx.Done():
			return exitOK // the deferred stopChildren stops them
		case c := <-exits:
			running--
			fmt.Fprintf(stderr, "chitchat-demo cluster: %s exited (%v); %d node(s) still running\n", c.name, exitStatus(c.err), running)
		}
	}
	fmt.Fprintln(stderr, "chitchat-demo cluster: every node has exited")
	return exitError
}

// startChild starts one node, copying its stderr (logs) to out with its name
// as prefix, and watching its stdout for the ready line.
func startChild(exe, name string, width int, args []string, out *prefixWriter) (*child, error) {
	cmd := exec.Command(exe, args...)
	setChildAttrs(cmd)
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, ready: make(chan string, 1), exited: make(chan struct{})}
	prefix := fmt.Sprintf("%-*s | ", width, name)
	var copies sync.WaitGroup
	copies.Go(func() { out.copyLines(prefix, stderrPipe) })
	copies.Go(func() {
		sc := bufio.NewScanner(stdoutPipe)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case c.ready <- m[1]:
				default:
				}
				continue
			}
			out.line(prefix, sc.Text())
		}
	})
	go func() {
		copies.Wait() // Wait must not run before the pipes are drained
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// stopChildren sends SIGTERM to every running child, waits up to grace,
// then kills the stragglers. It returns once every child has been reaped,
// and says how many it stopped: those that were still running.
func stopChildren(children []*child, grace time.Duration, stderr io.Writer) {
	running := 0
	for _, c := range children {
		select {
		case <-c.exited:
		default:
			running++
			c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	expired := false
	for _, c := range children {
		if !expired {
			select {
			case <-c.exited:
				continue
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-c.exited:
			continue
		default:
		}
		fmt.Fprintf(stderr, "chitchat-demo cluster: %s did not stop within %v: killing it\n", c.name, grace)
		c.cmd.Process.Kill()
		<-c.exited
	}
	switch gone := len(children) - running; {
	case gone > 0:
		fmt.Fprintf(stderr, "chitchat-demo cluster: stopped %d node(s); %d had exited already\n", running, gone)
	case running > 0:
		fmt.Fprintf(stderr, "chitchat-demo cluster: stopped %d node(s)\n", running)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// prefixWriter writes whole lines from several children without
// interleaving them.
type prefixWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixWriter) line(prefix, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, prefix+s+"\n")
}

func (p *prefixWriter) copyLines(prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.line(prefix, sc.Text())
	}
	io.Copy(io.Discard, r) // a line too long for the scanner: keep draining
}
