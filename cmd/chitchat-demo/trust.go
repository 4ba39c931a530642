package main

// The HTTP API's trust boundary. The API has no authentication: whoever can
// connect may read and write. What it refuses is what only a browser sends
// when a web page attacks a node the user can reach (the API is on
// loopback by default):
//
//   - DNS rebinding: a page of attacker.example whose name then resolves to
//     127.0.0.1 reads and writes the API as its own origin. Every request
//     whose Host is not an address of this node, a loopback name or a name
//     of --http_allowed_hosts is refused (421), reads included.
//   - Cross-site requests: a page cannot read the answers (same-origin
//     policy), but a GET or a form POST would still be executed. A mutation
//     whose Sec-Fetch-Site is not same-origin or none (typed or bookmarked
//     in the address bar), or whose Origin is not this node's, is refused
//     (403). curl and scripts send neither header and are served.
//   - HEAD on a mutation is refused (405): nothing legitimate sends it, and
//     it would mutate.
//
// Reserved keys (reserved.go) are refused whoever asks.

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// hostPolicy decides which Host headers the API serves.
type hostPolicy struct {
	anyHost bool                // --http_allowed_hosts '*': no check (behind a proxy that checks)
	names   map[string]bool     // lower-case names from --http_allowed_hosts
	addrs   map[netip.Addr]bool // the listen and public IPs, and IPs from --http_allowed_hosts
	// wildcard: the API listens on 0.0.0.0 or ::, so every address of the
	// machine's interfaces is the node's.
	wildcard bool
	// interfaceAddrs lists the machine's addresses (net.InterfaceAddrs;
	// replaced in tests).
	interfaceAddrs func() ([]net.Addr, error)
}

// newHostPolicy allows the node's listen and public addresses, loopback,
// and allowed (entries of --http_allowed_hosts: names or IPs, "*" for any).
func newHostPolicy(listen, public netip.AddrPort, allowed []string) hostPolicy {
	p := hostPolicy{
		names:          make(map[string]bool),
		addrs:          make(map[netip.Addr]bool),
		wildcard:       listen.Addr().IsUnspecified(),
		interfaceAddrs: net.InterfaceAddrs,
	}
	for _, ap := range []netip.AddrPort{listen, public} {
		if ap.IsValid() && !ap.Addr().IsUnspecified() {
			p.addrs[ap.Addr().Unmap()] = true
		}
	}
	for _, h := range allowed {
		switch ip, err := netip.ParseAddr(strings.Trim(h, "[]")); {
		case h == "*":
			p.anyHost = true
		case err == nil:
			p.addrs[ip.Unmap()] = true
		default:
			p.names[strings.ToLower(h)] = true
		}
	}
	return p
}

// allows reports whether the API serves a request with this Host header
// (host or host:port; the port is not checked, so that a port forward
// works). An empty Host (HTTP/1.0 without one) is no browser's.
func (p hostPolicy) allows(hostHeader string) bool {
	if p.anyHost || hostHeader == "" {
		return true
	}
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || p.addrs[ip] || (p.wildcard && p.isInterfaceAddr(ip))
	}
	// Browsers resolve localhost and *.localhost to loopback themselves
	// (RFC 6761), so no DNS answer can rebind them.
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || p.names[host]
}

func (p hostPolicy) isInterfaceAddr(ip netip.Addr) bool {
	addrs, err := p.interfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ia, ok := netip.AddrFromSlice(n.IP); ok && ia.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// checkHost wraps the whole API: a request for a Host the node does not
// answer to is refused, reads included, and logged.
func (p hostPolicy) checkHost(next minihttp.Handler, log *slog.Logger) minihttp.Handler {
	return minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		if !p.allows(r.Host) {
			log.Info("HTTP API: refused a request for a foreign host name", "host", r.Host, "method", r.Method,
				"path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, minihttp.StatusMisdirectedRequest, fmt.Sprintf(
				"this node does not answer to the host name %q (a protection against DNS rebinding): "+
					"use its address or localhost, or start it with --http_allowed_hosts %s", r.Host, hostOnly(r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hostOnly(hostHeader string) string {
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		return h
	}
	return hostHeader
}

// crossSite returns why a mutation request comes from another site, or ""
// if it does not: a Sec-Fetch-Site other than same-origin or none, or an
// Origin other than this node's (scheme http or https, and the request's
// Host, which checkHost has vetted). Unlike net/http's CrossOriginProtection,
// which spares GET, it applies to every mutation: upstream's API mutates
// on GET.
func crossSite(r *minihttp.Request) string {
	switch s := r.Header.Get("Sec-Fetch-Site"); s {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site: " + s
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
			return "Origin: " + o
		}
	}
	return ""
}
