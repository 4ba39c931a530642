package main

// The HTTP API flags: --http_*.

import (
	"flag"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// httpOptions is the validated HTTP part of the command line.
type httpOptions struct {
	// maxConns caps the TCP connections served at once; further ones wait
	// in the kernel's accept queue until one closes.
	maxConns int
	// maxEventStreams caps the /events streams open at once; more get 503.
	maxEventStreams int
	// allowedHosts are the host names and IPs the API answers to besides
	// its own addresses and loopback (Host header; trust.go); "*" is any.
	allowedHosts []string
}

// httpFlags holds the raw text of the HTTP flags.
type httpFlags struct {
	maxConns, maxEventStreams stringValue
	allowedHosts              listValue
}

// Defaults of the HTTP flags.
const (
	defaultHTTPMaxConns        = "256"
	defaultHTTPMaxEventStreams = "64"
)

func (hf *httpFlags) register(fs *flag.FlagSet) {
	hf.maxConns = stringValue{s: defaultHTTPMaxConns}
	hf.maxEventStreams = stringValue{s: defaultHTTPMaxEventStreams}
	fs.Var(&hf.maxConns, "http_max_connections", "HTTP API: most TCP `connections` served at once; more wait until one closes")
	fs.Var(&hf.maxEventStreams, "http_max_event_streams", "HTTP API: most /events `streams` open at once (each holds a connection); more get 503")
	fs.Var(&hf.allowedHosts, "http_allowed_hosts", "HTTP API: comma-separated host `names` or IPs it answers to (Host header), "+
		"besides its own addresses, localhost and loopback; '*' for any (only behind a proxy that authenticates); repeatable")
}

// parseHTTPFlags returns the HTTP options.
func parseHTTPFlags(hf *httpFlags, bad func(string, ...any)) httpOptions {
	var o httpOptions
	if n, err := strconv.Atoi(hf.maxConns.s); err != nil || n < 1 || n > 1_000_000 {
		bad("--http_max_connections %q: must be a whole number between 1 and 1000000 (default %s)", hf.maxConns.s, defaultHTTPMaxConns)
	} else {
		o.maxConns = n
	}
	if n, err := strconv.Atoi(hf.maxEventStreams.s); err != nil || n < 1 || n > 1_000_000 {
		bad("--http_max_event_streams %q: must be a whole number between 1 and 1000000 (default %s)", hf.maxEventStreams.s, defaultHTTPMaxEventStreams)
	} else {
		o.maxEventStreams = n
		if o.maxConns > 0 && n >= o.maxConns {
			bad("--http_max_event_streams %d must be below --http_max_connections %d: each stream holds a connection, "+
				"and other requests need some too", n, o.maxConns)
		}
	}
	for _, list := range hf.allowedHosts {
		for h := range strings.SplitSeq(list, ",") {
			h = strings.TrimSpace(h)
			if h == "*" || isIPLiteral(h) || hostName.MatchString(h) {
				o.allowedHosts = append(o.allowedHosts, strings.ToLower(h))
				continue
			}
			bad("--http_allowed_hosts %q: %q is not a host name or an IP address (no scheme, port or path: "+
				"such as node1.example.com or 10.0.0.5)", list, h)
		}
	}
	return o
}

// hostName matches a DNS name: dot-separated labels of letters, digits and
// hyphens.
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func isIPLiteral(s string) bool {
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return err == nil && ip.Zone() == ""
}
