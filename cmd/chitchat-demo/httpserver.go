package main

// The HTTP listener and server of a node: IPv4 wildcard bound IPv4 only,
// bounded connections, headers and idle time, and the security headers of
// every answer.

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/netutil"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// HTTP server limits.
const (
	readHeaderTimeout = 10 * time.Second // a client must send its headers within this
	idleTimeout       = 60 * time.Second // keep-alive connections idle longer are closed
	// maxHeaderBytes bounds the request line and headers (net/http's
	// default is 1 MiB): a GET /set_kv of the largest key and value the
	// library accepts (4 KiB and 60 KiB), percent-encoded at 3 bytes a
	// byte, fits.
	maxHeaderBytes = 256 << 10
	// writeTimeout bounds the writing of each answer but the /events
	// streams (which set a deadline per event): a client that stops
	// reading does not hold a connection slot for ever.
	writeTimeout = 30 * time.Second
)

// listenHTTP binds the HTTP API's TCP listener on addr: "tcp4" for an IPv4
// address, so that 0.0.0.0 binds IPv4 only (Go's "tcp" would make it a
// dual-stack socket that also answers on [::1] and every IPv6 address, past
// IPv4-only firewall rules); "tcp" otherwise, so that "::" stays
// dual-stack. The gossip socket follows the same rule (transport.UDP).
func listenHTTP(addr netip.AddrPort) (net.Listener, error) {
	network := "tcp"
	if addr.Addr().Is4() {
		network = "tcp4"
	}
	return net.Listen(network, addr.String())
}

// limitListener serves at most maxConns connections of ln at once: Accept
// waits until one closes, so that the connections beyond wait in the
// kernel's accept queue instead of each costing goroutines and buffers.
func limitListener(ln net.Listener, maxConns int) net.Listener {
	return netutil.LimitListener(ln, maxConns)
}

// newHTTPServer returns the server of handler. Cancelling ctx ends every
// request, the long-lived /events streams included.
func newHTTPServer(ctx context.Context, handler minihttp.Handler, logger *slog.Logger) *minihttp.Server {
	return &minihttp.Server{
		Handler:           handler,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: readHeaderTimeout,
		// Each answer's write deadline starts at writeTimeout; the /events
		// streams and blocking queries move it as they go. Request bodies
		// are bounded by the handlers that read them.
		WriteTimeout:   writeTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		Logger:         logger,
	}
}

// secureHeaders sets the headers every answer carries:
//
//   - X-Content-Type-Options: nosniff, so that a browser never runs a JSON
//     or text answer as a script or a page;
//   - Content-Security-Policy: frame-ancestors 'none' and X-Frame-Options:
//     DENY (for older browsers), so that no other site frames /ui to trick
//     a click (the /ui handler replaces the CSP with its own, which keeps
//     frame-ancestors 'none'); default-src 'none' as nothing else is a page;
//   - Cross-Origin-Resource-Policy: same-origin, so that no other site
//     embeds an answer (<script src>, <img src>) in its own page;
//   - Referrer-Policy: no-referrer.
func secureHeaders(next minihttp.Handler) minihttp.Handler {
	return minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
