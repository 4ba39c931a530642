package catalog

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"time"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// prober runs HTTP checks (minihttp: net/http would link crypto/tls, x509
// and HTTP/2 into every program that imports this package, which costs
// each chitchat-demo process about 1.5 MB of resident memory; see
// BENCHMARKS.md). dialTLS (check_tls.go) is its https:// dialer, nil in a
// build with -tags chitchat_omit_tls.
var prober = &minihttp.Prober{
	UserAgent: "chitchat-go catalog health check",
	DialTLS:   dialTLS, // the head is bounded to 64 KiB, Prober's default
}

// HTTPTCPProbe runs one attempt of c: an HTTP GET of c.HTTP (2xx passes,
// 429 warns, anything else or no answer is critical) or a TCP connect to
// c.TCP (passes once connected). It is Config.Probe's default.
func HTTPTCPProbe(ctx context.Context, c Check) Result {
	if c.HTTP != "" {
		return probeHTTP(ctx, c.HTTP)
	}
	return probeTCP(ctx, c.TCP)
}

func probeHTTP(ctx context.Context, url string) Result {
	resp, err := prober.Get(ctx, url)
	shown := redactURL(url) // the output is gossiped: never a password
	if err != nil {
		return Result{Critical, fmt.Sprintf("HTTP GET %s: %v", shown, probeError(err))}
	}
	out := fmt.Sprintf("HTTP GET %s: %s", shown, resp.Status)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return Result{Passing, out}
	case resp.StatusCode == minihttp.StatusTooManyRequests:
		return Result{Warning, out}
	default:
		return Result{Critical, out}
	}
}

func probeTCP(ctx context.Context, addr string) Result {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Result{Critical, fmt.Sprintf("TCP connect %s: %v", addr, probeError(err))}
	}
	conn.Close()
	return Result{Passing, fmt.Sprintf("TCP connect %s: Success", addr)}
}

// probeError drops what the check's output already says (the URL, the
// operation and the addresses) from a request's or a dial's error.
func probeError(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return err
}

// runCheck runs r's check every interval until ctx ends, publishing each
// result that differs from the last one published.
func (a *Agent) runCheck(ctx context.Context, r *registration) {
	c := *r.svc.Check
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, c.timeout())
		res := a.cfg.Probe(pctx, c)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.checksRun.Add(1)
		if !res.Status.valid() {
			res = Result{Critical, fmt.Sprintf("check returned status %q", res.Status)}
		}
		res.Output = cut(res.Output, MaxOutputLen)
		a.publishResult(r, res)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redactURL is rawURL with the password of its userinfo, if any, replaced
// by "xxxxx" (url.URL.Redacted): a check's URL and output are gossiped to
// every node and shown in /ui and the Consul API, while the credentials
// are needed only by the node that runs the check.
func redactURL(rawURL string) string {
	u, err := neturl.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); !ok {
		return rawURL
	}
	return u.Redacted()
}
