// Package minihttp is the HTTP/1.1 server of chitchat-demo's local API: a
// small subset of net/http's server API (Handler, ResponseWriter, Request,
// ServeMux with method and {name} patterns, ResponseController,
// MaxBytesReader) over a plain net.Listener; and Prober, the one-shot GET
// client of the service catalog's health checks.
//
// It exists for one reason: importing net/http links crypto/tls, x509 and
// the HTTP/2 stack, whose package initializers and code keep about 1.5 MB
// of the binary in every process's resident set (3 MB with crypto/tls,
// which the sidecar build leaves out), a cost a gossip sidecar pays on
// every host (BENCHMARKS.md, "The sidecar build"). The demo serves a local
// JSON API, a page and an event stream over HTTP/1.1, which needs none of
// that.
//
// What it does not do, on purpose: TLS, HTTP/2, Upgrade, pipelining beyond
// reading the next request once the previous answer is written, trailers
// in answers, and request bodies in any transfer coding but chunked.
//
// The parser is strict where leniency lets requests be smuggled or
// misread: a request with both Content-Length and Transfer-Encoding, with
// two different Content-Lengths, without a Host (HTTP/1.1) or with two
// Hosts, with a header name that is not a token ("Content-Length : 5"),
// or with a folded header line (obs-fold) is refused with 400 (a transfer
// coding other than chunked with 501) and the connection closed; a
// chunked body whose framing is malformed or costs far more than its data
// fails its handler's read, and the connection closes after the answer.
// Request line and headers are bounded by Server.MaxHeaderBytes (plus the
// 4 KiB the reader buffers ahead), 256 fields and Server.ReadHeaderTimeout;
// the time a connection may stay idle between requests, or wait for the
// rest of a body its handler left unread, by Server.IdleTimeout.
package minihttp
