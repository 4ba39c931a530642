package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// nodeOptions is a node's validated command line.
type nodeOptions struct {
	listen    netip.AddrPort // UDP gossip and TCP HTTP bind address
	public    netip.AddrPort // gossip advertise address
	nodeID    string
	seeds     []string
	interval  time.Duration
	clusterID string
	deadGrace time.Duration // failure detector's dead-node grace period
	phi       float64       // failure detector's phi threshold
	initial   time.Duration // failure detector's initial (prior) interval
	tombGrace time.Duration // MarkedForDeletionGracePeriod
	logLevel  slog.Level

	// leaveTimeout bounds the graceful leave on SIGINT/SIGTERM; 0 skips it.
	leaveTimeout time.Duration

	// Gossip encryption: the keys, primary first (none: plaintext), and
	// the migration switches.
	gossipKeys      []chitchat.Key
	acceptPlaintext bool
	sendPlaintext   bool

	overlay *overlayOptions // nil unless --overlay

	catalog catalogOptions // services, DNS (flags_catalog.go)
	http    httpOptions    // the HTTP API's limits and trust (--http_*)
}

// overlayOptions is the validated WireGuard overlay part of the command
// line.
type overlayOptions struct {
	nodeID     uint64
	ip         netip.Addr
	ip6        netip.Addr    // the IPv6 address of a dual-stack node; zero otherwise
	tun        string        // --overlay_tun: a TUN interface instead of the netstack
	listenAddr netip.Addr    // --listen_addr's IP, where the WireGuard port is bound too
	listenPort int           // 0 picks a free port
	keyFile    string        // "" for an ephemeral key
	keepalive  time.Duration // whole seconds; 0 is off
}

// stringValue is a flag.Value that keeps the text as given; every flag is
// parsed after flag.Parse so that all problems can be reported at once
// (flag.Parse stops at the first one).
type stringValue struct {
	s   string
	set bool
}

func (v *stringValue) String() string { return v.s }
func (v *stringValue) Set(s string) error {
	v.s, v.set = s, true
	return nil
}

// listValue is a repeatable flag (--seed a --seed b).
type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error {
	*v = append(*v, s)
	return nil
}

// boolValue is a flag that may be given without a value (--overlay), kept
// as text like the others and parsed later.
type boolValue struct{ stringValue }

func (*boolValue) IsBoolFlag() bool { return true }

// nodeFlags holds the raw text of a node's flags.
type nodeFlags struct {
	listen, public, nodeID, interval     stringValue
	clusterID, deadGrace, tombGrace, log stringValue
	phi, initial, leaveTimeout           stringValue
	seeds                                listValue

	gossipKeys                     listValue
	gossipKeyFile                  stringValue
	acceptPlaintext, sendPlaintext boolValue

	overlay                              boolValue
	overlayNodeID, overlayIP             stringValue
	wgListenPort, wgKeyFile, wgKeepalive stringValue
	overlayTUN                           stringValue

	catalogFlags
	http httpFlags
}

// Defaults of chitchat-test; the last three are ours.
const (
	defaultListenAddr = "127.0.0.1:10000"
	defaultIntervalMS = "500"
	defaultClusterID  = "testing"
	defaultDeadGrace  = "10s"
	defaultTombGrace  = "60s"
	defaultLogLevel   = "info"
	defaultPhi        = "8"  // failuredetector default
	defaultInitial    = "5s" // failuredetector default

	defaultLeaveTimeout = "3s"
	defaultWGPort       = "51820" // WireGuard's usual port
	defaultWGKeepalive  = "0s"
)

func newNodeFlagSet() (*flag.FlagSet, *nodeFlags) {
	nf := &nodeFlags{
		listen:    stringValue{s: defaultListenAddr},
		interval:  stringValue{s: defaultIntervalMS},
		clusterID: stringValue{s: defaultClusterID},
		deadGrace: stringValue{s: defaultDeadGrace},
		tombGrace: stringValue{s: defaultTombGrace},
		log:       stringValue{s: defaultLogLevel},
		phi:       stringValue{s: defaultPhi},
		initial:   stringValue{s: defaultInitial},

		leaveTimeout: stringValue{s: defaultLeaveTimeout},
		wgListenPort: stringValue{s: defaultWGPort},
		wgKeepalive:  stringValue{s: defaultWGKeepalive},
		catalogFlags: newCatalogFlags(),
	}
	fs := flag.NewFlagSet("chitchat-demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print errors and usage ourselves
	fs.Var(&nf.listen, "listen_addr", "`ip:port` to bind: UDP for gossip and TCP for the HTTP API")
	fs.Var(&nf.public, "public_addr", "`ip:port` other nodes use to reach this one (default: --listen_addr)")
	fs.Var(&nf.nodeID, "node_id", "unique node `name` (default: server:{public_addr}-{random words})")
	fs.Var(&nf.seeds, "seed", "`host:port` of a node to join (ip or DNS name); repeat for several")
	fs.Var(&nf.interval, "interval_ms", "gossip interval in `milliseconds`")
	fs.Var(&nf.clusterID, "cluster_id", "cluster `name`; nodes of other clusters are ignored")
	fs.Var(&nf.deadGrace, "dead_node_grace_period", "how long a dead node is remembered before it is forgotten, as a `duration` such as 10s")
	fs.Var(&nf.tombGrace, "marked_for_deletion_grace_period", "how long deleted keys are kept as tombstones, as a `duration`")
	fs.Var(&nf.phi, "phi_threshold", "failure detector: a node is dead once silent for about `phi` times its mean heartbeat interval")
	fs.Var(&nf.initial, "initial_interval", "failure detector: heartbeat interval assumed before any is measured (a `duration`); "+
		"lower it with a short --interval_ms to detect deaths sooner")
	fs.Var(&nf.leaveTimeout, "leave_timeout", "on SIGINT/SIGTERM, how long to wait for peers to learn that this node leaves "+
		"(a `duration`; they then report it left, not dead); 0 skips the leave")
	fs.Var(&nf.log, "log_level", "log `level`: debug, info, warn or error")
	nf.http.register(fs)

	fs.Var(&nf.gossipKeys, "gossip_key", "encrypt gossip with this `key` (32 bytes in base64); repeat for several: "+
		"the first encrypts, every one decrypts (for key rotation)")
	fs.Var(&nf.gossipKeyFile, "gossip_key_file", "read gossip keys from this `file`: one base64 key per line, the first "+
		"encrypts; blank lines and #comments are ignored (keys given with --gossip_key come first)")
	fs.Var(&nf.acceptPlaintext, "gossip_accept_plaintext", "with a key, also accept unencrypted gossip "+
		"(migration step: while some nodes still send plaintext)")
	fs.Var(&nf.sendPlaintext, "gossip_send_plaintext", "with a key, still send unencrypted gossip "+
		"(first migration step: while some nodes have no key yet)")

	fs.Var(&nf.overlay, "overlay", "run a WireGuard overlay node announced over gossip (userspace: no kernel module; no root either without --overlay_tun); "+
		"runs in "+overlayBinaryName+", the build with -tags overlay, found next to this binary or in PATH")
	fs.Var(&nf.overlayNodeID, "overlay_node_id", "overlay: this worker's `id`, a number unique in the cluster (required with --overlay)")
	fs.Var(&nf.overlayIP, "overlay_ip", "overlay: this node's `ip` inside the overlay, in a private range (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) "+
		"such as 10.200.0.1, or an IPv4 and an IPv6 address for a dual-stack node, such as 10.200.0.1,fd00:200::1 (required with --overlay)")
	fs.Var(&nf.overlayTUN, "overlay_tun", "overlay: run WireGuard on a TUN interface of this `name`, such as chitchat0, "+
		"so that every process of the host reaches the overlay (needs root or CAP_NET_ADMIN); without it, the overlay lives in this process only")
	fs.Var(&nf.wgListenPort, "wg_listen_port", "overlay: WireGuard UDP `port`, on the IP of --listen_addr (every interface if that is 0.0.0.0 or ::); 0 picks a free one")
	fs.Var(&nf.wgKeyFile, "wg_private_key_file", "overlay: WireGuard private key `file` (wg genkey format), created (mode 0600) "+
		"if missing; without it the key is new at every start")
	fs.Var(&nf.wgKeepalive, "wg_keepalive", "overlay: WireGuard persistent keepalive, a `duration` in whole seconds "+
		"such as 25s for nodes behind NAT; 0 is off")
	addCatalogFlags(fs, &nf.catalogFlags)
	return fs, nf
}

// parseNodeFlags parses and validates a node's command line. It returns
// flag.ErrHelp for -h/--help, and otherwise every problem found, each one
// naming the flag and saying what to fix.
func parseNodeFlags(args []string) (nodeOptions, error) {
	fs, nf := newNodeFlagSet()
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	if err := parseAll(fs, args, bad); err != nil {
		return nodeOptions{}, err
	}

	var o nodeOptions
	o.listen = parseAddrFlag("listen_addr", nf.listen.s, bad)
	o.public = o.listen
	if nf.public.set {
		o.public = parseAddrFlag("public_addr", nf.public.s, bad)
		if o.public.IsValid() && o.public.Addr().IsUnspecified() {
			bad("--public_addr %q: other nodes cannot send to a wildcard address; give this machine's address", nf.public.s)
		}
	} else if o.listen.IsValid() && o.listen.Addr().IsUnspecified() {
		bad("--listen_addr %q is a wildcard address: also set --public_addr to the ip:port other nodes should use", nf.listen.s)
	}
	for _, s := range nf.seeds {
		host, port, err := net.SplitHostPort(s)
		switch {
		case err != nil:
			bad("--seed %q: not host:port (%v); write it like 127.0.0.1:10000 or localhost:10000 ([::1]:10000 for IPv6)", s, stripAddrErr(err))
		case host == "":
			bad("--seed %q: the host is missing; write it like 127.0.0.1:10000", s)
		case !validPort(port):
			bad("--seed %q: port %q is not a number between 1 and 65535", s, port)
		}
	}
	o.seeds = nf.seeds
	if nf.nodeID.set && strings.TrimSpace(nf.nodeID.s) == "" {
		bad("--node_id is empty: give a unique name, or leave the flag out for a generated one")
	}
	o.nodeID = nf.nodeID.s
	if ms, err := strconv.ParseInt(nf.interval.s, 10, 64); err != nil || ms <= 0 || ms > 3_600_000 {
		bad("--interval_ms %q: must be a whole number of milliseconds between 1 and 3600000 (default %s)", nf.interval.s, defaultIntervalMS)
	} else {
		o.interval = time.Duration(ms) * time.Millisecond
	}
	o.clusterID = nf.clusterID.s
	if o.clusterID == "" {
		bad("--cluster_id is empty: give the cluster a name (default %q)", defaultClusterID)
	}
	o.deadGrace = parseDurationFlag("dead_node_grace_period", nf.deadGrace.s, bad)
	o.tombGrace = parseDurationFlag("marked_for_deletion_grace_period", nf.tombGrace.s, bad)
	o.initial = parseDurationFlag("initial_interval", nf.initial.s, bad)
	if v, err := strconv.ParseFloat(nf.phi.s, 64); err != nil || !(v > 0) || math.IsInf(v, 0) {
		bad("--phi_threshold %q: must be a positive number (default %s)", nf.phi.s, defaultPhi)
	} else {
		o.phi = v
	}
	if err := o.logLevel.UnmarshalText([]byte(nf.log.s)); err != nil {
		bad("--log_level %q: must be debug, info, warn or error", nf.log.s)
	}
	if d, err := time.ParseDuration(nf.leaveTimeout.s); err != nil || d < 0 {
		bad("--leave_timeout %q: must be a duration with a unit, such as 3s or 500ms, or 0 to skip the leave", nf.leaveTimeout.s)
	} else {
		o.leaveTimeout = d
	}
	o.gossipKeys, o.acceptPlaintext, o.sendPlaintext = parseKeyFlags(nf, bad)
	o.overlay = parseOverlayFlags(nf, o.listen, o.public, bad)
	o.catalog = parseCatalogFlags(nf.catalogFlags, bad)
	o.http = parseHTTPFlags(&nf.http, bad)
	if err := errors.Join(problems...); err != nil {
		return nodeOptions{}, err
	}
	if o.nodeID == "" {
		o.nodeID = fmt.Sprintf("server:%s-%s", o.public, memorableID())
	}
	return o, nil
}

// parseAll runs fs.Parse over args, going on after each error so that every
// unknown flag is reported, not only the first. It returns flag.ErrHelp if
// help was asked for.
func parseAll(fs *flag.FlagSet, args []string, bad func(string, ...any)) error {
	for {
		err := fs.Parse(args)
		if err == nil {
			break
		}
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		msg := err.Error()
		args = fs.Args()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = fmt.Sprintf("unknown flag --%s (run with --help for the list of flags)", name)
			// "--unknown value": skip the value too, or it would end flag parsing.
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				args = args[1:]
			}
		} else if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
			msg = fmt.Sprintf("flag --%s needs a value", name)
		}
		bad("%s", msg)
	}
	for _, a := range fs.Args() {
		bad("unexpected argument %q: every option is a flag such as --seed 127.0.0.1:10000", a)
	}
	return nil
}

func parseAddrFlag(name, s string, bad func(string, ...any)) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		bad("--%s %q: not an ip:port such as 127.0.0.1:10000 ([::1]:10000 for IPv6; host names are not accepted here)", name, s)
	case ap.Port() == 0:
		bad("--%s %q: the port must be between 1 and 65535", name, s)
	default:
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func parseDurationFlag(name, s string, bad func(string, ...any)) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		bad("--%s %q: must be a positive duration with a unit, such as 10s, 500ms or 1m30s", name, s)
		return 0
	}
	return d
}

func parseBoolFlag(name string, v boolValue, bad func(string, ...any)) bool {
	if !v.set {
		return false
	}
	b, err := strconv.ParseBool(v.s)
	if err != nil {
		bad("--%s=%q: must be true or false (or the flag alone for true)", name, v.s)
	}
	return b
}

func validPort(s string) bool {
	p, err := strconv.ParseUint(s, 10, 16)
	return err == nil && p > 0
}

// stripAddrErr keeps the reason of a net.AddrError ("missing port in
// address"), without repeating the address.
func stripAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// printFlags writes fs's flags with their defaults, spelled with two dashes.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" { // a bool flag has none
			name = " " + name
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, name, usage)
		if f.DefValue != "" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `chitchat-demo runs a node of a chitchat gossip cluster with an HTTP API,
a drop-in replacement for chitchat's chitchat-test server.

Usage:
  chitchat-demo [flags]                 run one node
  chitchat-demo cluster [-n 5] [flags]  run a local cluster (see chitchat-demo cluster --help)

Flags:
`)
	fs, _ := newNodeFlagSet()
	printFlags(w, fs)
	fmt.Fprint(w, `
HTTP API (GET, on --listen_addr): / (cluster state), /set_kv/?key=&value=,
/mark_for_deletion/?key=, /delete_after_ttl/?key=, /events, /ui, /metrics,
/healthz, /v1/agent/members, /v1/keyring, /overlay/peers, /overlay/wg-quick.
Consul's read-only API over the service catalog: /v1/agent/self,
/v1/agent/services, /v1/catalog/nodes, /v1/catalog/node/<name>,
/v1/catalog/services, /v1/catalog/service/<name>, /v1/health/service/<name>,
with blocking queries (?index=, ?wait=); DNS on --dns_addr.

The three mutations also take POST with a form or a JSON body. The API has
no authentication: keep it on loopback, or behind a proxy that authenticates.
It refuses mutations from other web sites, Host names that are not the node's
(see --http_allowed_hosts), and keys under worker:, __chitchat. and service:.

SIGINT or SIGTERM: the node leaves the cluster (peers list it in left_nodes,
not dead_nodes), then stops.
`)
}
