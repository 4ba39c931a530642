package catalog

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The HTTP probe follows redirects as net/http's client did (it stops at
// the 10th), reads short bodies, and does not wait for a server that keeps
// the connection open after its answer.
func TestHTTPProbeRedirectsAndBodies(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ok":
			fmt.Fprint(w, "healthy\n")
		case r.URL.Path == "/to-ok":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case r.URL.Path == "/to-down":
			http.Redirect(w, r, "/down?x=1", http.StatusTemporaryRedirect)
		case r.URL.Path == "/loop":
			http.Redirect(w, r, "/loop", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/chain/"): // /chain/N redirects N times, then answers 200
			if n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/chain/")); n > 0 {
				http.Redirect(w, r, strconv.Itoa(n-1), http.StatusFound)
			}
		case r.URL.Path == "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case r.URL.Path == "/no-location":
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/big":
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		case r.URL.Path == "/ua":
			if r.Header.Get("User-Agent") != "chitchat-go catalog health check" || r.Header.Get("Connection") != "close" {
				w.WriteHeader(http.StatusBadRequest)
			}
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer hs.Close()
	tests := []struct {
		name, path string
		want       Status
		wantOutput string
	}{
		{"redirect to a passing page", "/to-ok", Passing, ": 200 OK"},
		{"redirect to a failing page", "/to-down", Critical, ": 503 Service Unavailable"},
		{"redirect loop", "/loop", Critical, ": stopped after 10 redirects"},
		{"9 redirects are followed", "/chain/9", Passing, ": 200 OK"},
		{"the 10th redirect is an error", "/chain/10", Critical, ": stopped after 10 redirects"},
		{"redirect to another scheme", "/to-file", Critical, `: unsupported protocol scheme "file"`},
		{"redirect without Location", "/no-location", Critical, ": 302 Found"},
		{"large body", "/big", Passing, ": 200 OK"},
		{"request headers", "/ua", Passing, ": 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := HTTPTCPProbe(ctx, Check{HTTP: hs.URL + tt.path})
			want := "HTTP GET " + hs.URL + tt.path + tt.wantOutput
			if got.Status != tt.want || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want %s %q", got, tt.want, want)
			}
		})
	}
}

// A server that answers and then keeps the connection open (ignoring
// Connection: close) is judged on its answer, not timed out: the probe
// returns before its context ends. An answer without a body (204, 304)
// has none to wait for, whatever its Content-Length says (RFC 9112 §6.3).
func TestHTTPProbeServerKeepsConnectionOpen(t *testing.T) {
	tests := []struct {
		name, answer string
		want         Status
		wantOutput   string
	}{
		{"short body", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", Passing, "200 OK"},
		{"204 with a Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", Passing, "204 No Content"},
		{"304 with a Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", Critical, "304 Not Modified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.answer, true)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := HTTPTCPProbe(ctx, Check{HTTP: url})
			if want := "HTTP GET " + url + ": " + tt.wantOutput; got.Status != tt.want || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want %s %q", got, tt.want, want)
			}
			if ctx.Err() != nil {
				t.Errorf("HTTPTCPProbe returned when its context ended (%v), want as soon as the answer's head was read", ctx.Err())
			}
		})
	}
}

// Malformed answers and oversized heads fail the check with a reason.
func TestHTTPProbeMalformedAnswers(t *testing.T) {
	tests := []struct{ name, answer, wantOutput string }{
		{"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", `malformed HTTP response "SSH-2.0-OpenSSH_9.2"`},
		{"no status code", "HTTP/1.1 OK\r\n\r\n", `malformed HTTP response "HTTP/1.1 OK"`},
		{"version with a letter", "HTTP/1.x 200 OK\r\n\r\n", `malformed HTTP response "HTTP/1.x 200 OK"`},
		{"version without a minor", "HTTP/1. 200 OK\r\n\r\n", `malformed HTTP response "HTTP/1. 200 OK"`},
		{"version with two minor digits", "HTTP/1.10 200 OK\r\n\r\n", `malformed HTTP response "HTTP/1.10 200 OK"`},
		{"version with a tail", "HTTP/1.1x 200 OK\r\n\r\n", `malformed HTTP response "HTTP/1.1x 200 OK"`},
		{"another major version", "HTTP/2.0 200 OK\r\n\r\n", `malformed HTTP response "HTTP/2.0 200 OK"`},
		{"huge head", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", "server's response headers exceeded the limit"},
		{"endless interim answers", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 4000), "server's response headers exceeded the limit"},
		{"closed without answering", "", "EOF"},
		{"closed mid-head", "HTTP/1.1 200 OK\r\nX: a\r\n", "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.answer, false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := HTTPTCPProbe(ctx, Check{HTTP: url})
			if want := "HTTP GET " + url + ": " + tt.wantOutput; got.Status != Critical || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want critical %q", got, want)
			}
		})
	}
}

// A URL's userinfo is sent as Basic credentials, as net/http's client sent
// it: to the URL's host and, through a relative redirect, to the same
// host again, but not to another host a redirect names.
func TestHTTPProbeUserinfo(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			w.WriteHeader(http.StatusBadRequest) // credentials leaked to another host
		}
	}))
	defer other.Close()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth":
			if user, pass, ok := r.BasicAuth(); !ok || user != "probe" || pass != "s3cret word" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case "/to-auth":
			http.Redirect(w, r, "auth", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, "//"+other.Listener.Addr().String()+"/", http.StatusFound)
		}
	}))
	defer hs.Close()
	withUser := "http://probe:s3cret%20word@" + hs.Listener.Addr().String()
	tests := []struct {
		name, url  string
		want       Status
		wantOutput string
	}{
		{"credentials sent", withUser + "/auth", Passing, "200 OK"},
		{"credentials kept by a relative redirect", withUser + "/to-auth", Passing, "200 OK"},
		{"credentials not sent to another host", withUser + "/to-other", Passing, "200 OK"},
		{"no userinfo, no credentials", hs.URL + "/auth", Critical, "401 Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := HTTPTCPProbe(ctx, Check{HTTP: tt.url})
			shown := strings.Replace(tt.url, "s3cret%20word", "xxxxx", 1) // the output is gossiped
			if want := "HTTP GET " + shown + ": " + tt.wantOutput; got.Status != tt.want || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want %s %q", got, tt.want, want)
			}
		})
	}
}

// A check's password is never gossiped: the service's value carries the
// URL with the password redacted, and so does every result's output.
func TestCheckPasswordNotGossiped(t *testing.T) {
	url := "http://probe:s3cret@127.0.0.1:1/health"
	v, err := encodeService(Service{Name: "web", Port: 80, Check: &Check{HTTP: url, Interval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "s3cret") || !strings.Contains(v, "probe:xxxxx@127.0.0.1:1") {
		t.Errorf("encodeService = %s, want the URL with its password redacted", v)
	}
	got := HTTPTCPProbe(context.Background(), Check{HTTP: url})
	if strings.Contains(got.Output, "s3cret") || !strings.Contains(got.Output, "probe:xxxxx@") {
		t.Errorf("HTTPTCPProbe output %q, want the URL with its password redacted", got.Output)
	}
	if redactURL("http://user@host/") != "http://user@host/" || redactURL("http://host/") != "http://host/" {
		t.Errorf("redactURL changed a URL without a password")
	}
}

// A check of a zoned IPv6 address dials through the zone but leaves it out
// of the Host field, as net/http's client did (RFC 6874).
func TestHTTPProbeIPv6ZoneNotInHost(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Host, "%") {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	defer hs.Close()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	zone := ""
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			zone = ifi.Name
		}
	}
	if zone == "" {
		t.Skip("no loopback interface")
	}
	url := "http://[::1%25" + zone + "]:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, want := HTTPTCPProbe(ctx, Check{HTTP: url}), "HTTP GET "+url+": 200 OK"; got.Status != Passing || got.Output != want {
		t.Errorf("HTTPTCPProbe = %+v, want passing %q", got, want)
	}
}

// rawServer answers every connection with answer after reading its
// request's first bytes, then closes it, or with holdOpen waits for the
// client to close it first; it returns its URL.
func rawServer(t *testing.T, answer string, holdOpen bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte(answer))
				if holdOpen {
					c.Read(buf) // until the client closes
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// The status in a check's output is the status line after the version, as
// net/http's resp.Status was (Consul's users read it): the spaces before
// the code skipped, the reason as sent.
func TestHTTPProbeStatusLine(t *testing.T) {
	tests := []struct {
		name, statusLine string
		want             Status
		wantOutput       string
	}{
		{"reason", "HTTP/1.1 200 OK", Passing, "200 OK"},
		{"no reason", "HTTP/1.1 204", Passing, "204"},
		{"empty reason", "HTTP/1.1 200 ", Passing, "200 "},
		{"two spaces before the code", "HTTP/1.1  200 OK", Passing, "200 OK"},
		{"spaces in and after the reason", "HTTP/1.1 503 Service  Unavailable ", Critical, "503 Service  Unavailable "},
		{"HTTP/1.0", "HTTP/1.0 200 OK", Passing, "200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.statusLine+"\r\nContent-Length: 0\r\n\r\n", false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := HTTPTCPProbe(ctx, Check{HTTP: url})
			if want := "HTTP GET " + url + ": " + tt.wantOutput; got.Status != tt.want || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want %s %q", got, tt.want, want)
			}
		})
	}
}

// A check whose context ends while it dials fails with the context's
// error, as when it ends later and as net/http's client did.
func TestHTTPProbeContextEndsWhileDialing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url := "http://" + ln.Addr().String() + "/"
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		wantOutput string
	}{
		{"deadline passed", expired, "context deadline exceeded"},
		{"canceled", canceled, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HTTPTCPProbe(tt.ctx, Check{HTTP: url})
			if want := "HTTP GET " + url + ": " + tt.wantOutput; got.Status != Critical || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want critical %q", got, want)
			}
		})
	}
}
