package minihttp

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// A Prober sends one-shot GETs, as health checks do: a new connection per
// request (a check must see a service that stopped accepting
// connections), no proxy, redirects followed as net/http's client follows
// them (9 at most: the 10th is an error), the body read up to a small
// bound and dropped.
type Prober struct {
	// UserAgent is sent with every request.
	UserAgent string
	// DialTLS opens a TLS connection to addr (host:port) for an https://
	// URL, verifying the certificate for serverName. Nil: https:// URLs
	// fail with ErrNoTLS.
	DialTLS func(ctx context.Context, addr, serverName string) (net.Conn, error)
	// MaxHeaderBytes bounds the status line and headers of an answer.
	// Zero means 64 KiB.
	MaxHeaderBytes int
}

// ErrNoTLS is the error of an https:// URL for a Prober without DialTLS.
var ErrNoTLS = errors.New("https is not supported by this build (it was built with -tags chitchat_omit_tls)")

// maxRedirects is net/http's client's bound: its default CheckRedirect
// refuses to send more than 10 requests, so the 10th redirect received is
// an error (9 are followed).
const maxRedirects = 10

// maxProbeBody is how much of an answer's body Get reads before closing.
const maxProbeBody = 4 << 10

// A ProbeResponse is the answer to a Prober's GET.
type ProbeResponse struct {
	StatusCode int
	Status     string // the status line after the version and its spaces, as net/http's: "200 OK"
	Header     Header
}

// Get GETs rawURL within ctx and returns the final answer's status (after
// redirects). Errors are wrapped in *url.Error, as net/http's client's.
func (p *Prober) Get(ctx context.Context, rawURL string) (*ProbeResponse, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	for sent := 1; ; sent++ {
		resp, err := p.get(ctx, u)
		if err != nil {
			return nil, &url.Error{Op: "Get", URL: u.Redacted(), Err: err}
		}
		switch resp.StatusCode {
		case 301, 302, 303, 307, 308:
		default:
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, nil // net/http's client returns such an answer as is
		}
		next, err := u.Parse(loc)
		if err != nil {
			return nil, &url.Error{Op: "Get", URL: u.Redacted(), Err: fmt.Errorf("failed to parse Location header %q: %v", truncate(loc), err)}
		}
		if sent == maxRedirects {
			return nil, &url.Error{Op: "Get", URL: u.Redacted(), Err: fmt.Errorf("stopped after %d redirects", maxRedirects)}
		}
		u = next
	}
}

// get sends one GET of u and reads its answer's head.
func (p *Prober) get(ctx context.Context, u *url.URL) (*ProbeResponse, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host in request URL")
	}
	host, port := u.Hostname(), u.Port()
	var c net.Conn
	var err error
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	case "https":
		if p.DialTLS == nil {
			return nil, ErrNoTLS
		}
		if port == "" {
			port = "443"
		}
		c, err = p.DialTLS(ctx, net.JoinHostPort(host, port), host)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Not the dialer's "i/o timeout" or "operation was canceled":
			// ctx's error, as in the exchange below and as net/http's client.
			return nil, ctx.Err()
		}
		return nil, err
	}
	defer c.Close()
	// ctx bounds the exchange: when it ends, the connection closes and the
	// exchange fails with ctx's error (not a deadline's "i/o timeout").
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	resp, err := p.exchange(c, u)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err() // the connection failed because ctx closed it
	}
	return resp, err
}

func (p *Prober) exchange(c net.Conn, u *url.URL) (*ProbeResponse, error) {
	ua := p.UserAgent
	if ua == "" || !validFieldValue(ua) {
		ua = "minihttp"
	}
	bw := bufio.NewWriterSize(c, 512)
	fmt.Fprintf(bw, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n", u.RequestURI(), hostHeader(u), ua)
	if u.User != nil {
		// As net/http's client: the URL's userinfo (a relative redirect
		// keeps it, another host's URL has its own or none).
		pass, _ := u.User.Password()
		fmt.Fprintf(bw, "Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	bw.WriteString("Accept-Encoding: identity\r\nConnection: close\r\n\r\n")
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	limit := p.MaxHeaderBytes
	if limit <= 0 {
		limit = 64 << 10
	}
	lr := &io.LimitedReader{R: c, N: int64(limit)}
	br := bufio.NewReaderSize(lr, 4<<10)
	tp := textproto.NewReader(br)
	var resp *ProbeResponse
	for {
		line, err := tp.ReadLine()
		if err == io.EOF && lr.N == int64(limit) {
			return nil, io.EOF // closed without a byte of answer: net/http's client's "EOF"
		}
		if err == nil && lr.N <= 0 && br.Buffered() == 0 {
			// The limit cut the line (ReadLine returns a cut line without
			// an error), or ended it with no room for the rest of the head.
			err = errHeadTooLarge
		}
		if err != nil {
			return nil, headErr(err, lr)
		}
		proto, status, ok := strings.Cut(line, " ")
		status = strings.TrimLeft(status, " ") // as net/http's resp.Status
		code, _, _ := strings.Cut(status, " ")
		n, cerr := strconv.Atoi(code)
		if !ok || !isHTTP1(proto) || len(code) != 3 || cerr != nil || n < 100 {
			return nil, fmt.Errorf("malformed HTTP response %q", truncate(line))
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return nil, headErr(err, lr)
		}
		if n >= 200 || n == 101 {
			resp = &ProbeResponse{StatusCode: n, Status: status, Header: hdr}
			break
		}
		// 1xx: an interim answer; the final one follows.
	}
	// Read a short body of known length, so that the server is not reset
	// mid-write; any other is left unread (the connection closes). A 204
	// or 304 (or 101) has none, whatever its Content-Length says.
	if resp.StatusCode == 204 || resp.StatusCode == 304 || resp.StatusCode == 101 {
		return resp, nil
	}
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil && n > 0 && n <= maxProbeBody {
		lr.N = n
		io.CopyN(io.Discard, br, n)
	}
	return resp, nil
}

// isHTTP1 reports whether proto is an HTTP/1 version, "HTTP/1." and a
// digit (RFC 9112 §2.3); net/http's client takes any "HTTP/d.d", but an
// HTTP/1.1 connection answered by another major version is broken.
func isHTTP1(proto string) bool {
	return len(proto) == len("HTTP/1.1") && strings.HasPrefix(proto, "HTTP/1.") && '0' <= proto[7] && proto[7] <= '9'
}

// hostHeader is u's host as net/http's client sends it in Host: without
// an IPv6 zone (RFC 6874: a zone means something to the client's host
// only, and "%" is no character of a Host field) or an empty port.
func hostHeader(u *url.URL) string {
	h := strings.TrimSuffix(u.Host, ":")
	if strings.HasPrefix(h, "[") {
		if i := strings.LastIndex(h, "]"); i > 0 {
			if j := strings.LastIndex(h[:i], "%"); j > 0 {
				h = h[:j] + h[i:]
			}
		}
	}
	return h
}

var errHeadTooLarge = errors.New("server's response headers exceeded the limit")

func headErr(err error, lr *io.LimitedReader) error {
	if lr.N <= 0 {
		return errHeadTooLarge
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
