package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
	"github.com/gossipkit/chitchat-go/internal/minihttp/minihttptest"
	"github.com/gossipkit/chitchat-go/internal/pipenet"
)

// --listen_addr 0.0.0.0:port serves IPv4 only: [::1]:port refuses the
// connection (it would be accepted by a dual-stack listener).
func TestListenHTTPIPv4WildcardIsIPv4Only(t *testing.T) {
	ln, err := listenHTTP(netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	v4, err := net.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatalf("127.0.0.1:%d: %v", port, err)
	}
	v4.Close()
	if probe, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		probe.Close()
	}
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	c, err := net.Dial("tcp", v6.String())
	if err == nil {
		c.Close()
		t.Fatalf("%v accepted a connection: the listener on 0.0.0.0 also serves IPv6", v6)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %v = %v, want connection refused", v6, err)
	}
}

// pipeListener serves the HTTP API inside a synctest bubble.
type pipeListener = pipenet.Listener

func newPipeListener() *pipeListener {
	return pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10000})
}

// serveInBubble serves h with newHTTPServer behind limitListener(maxConns)
// on a pipeListener, until the test ends.
func serveInBubble(t *testing.T, h minihttp.Handler, maxConns int) *pipeListener {
	t.Helper()
	ln := newPipeListener()
	hs := newHTTPServer(t.Context(), h, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(limitListener(ln, maxConns))
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln
}

// roundTrip sends a GET of path on c (in the background: pipe writes
// block until read) and returns the answer's status, or an error.
func roundTrip(c net.Conn, path string, header string) (int, error) {
	go io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n"+header+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

var okHandler = minihttp.HandlerFunc(func(w minihttp.ResponseWriter, _ *minihttp.Request) { io.WriteString(w, "ok\n") })

// At most --http_max_connections connections are served at once; the next
// one waits until one closes.
func TestHTTPConnectionCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := serveInBubble(t, okHandler, 2)
		c1, c2 := ln.Dial(), ln.Dial()
		for _, c := range []net.Conn{c1, c2} {
			defer c.Close()
			if code, err := roundTrip(c, "/", ""); err != nil || code != minihttp.StatusOK {
				t.Fatalf("GET / = %d, %v; want 200", code, err)
			}
		}
		c3 := ln.Dial()
		defer c3.Close()
		third := make(chan error, 1)
		go func() {
			_, err := roundTrip(c3, "/", "")
			third <- err
		}()
		synctest.Wait()
		select {
		case err := <-third:
			t.Fatalf("a third connection was served (%v) while two were open, with a cap of 2", err)
		default:
		}
		c1.Close()
		if err := <-third; err != nil {
			t.Fatalf("the third connection, once the first closed: %v", err)
		}
	})
}

// An idle keep-alive connection is closed after idleTimeout; a client that
// does not finish its headers is cut off after readHeaderTimeout.
func TestHTTPTimeouts(t *testing.T) {
	tests := []struct {
		name string
		send func(c net.Conn) // what the client does before going silent
		want time.Duration
	}{
		{"idle keep-alive", func(c net.Conn) {
			if code, err := roundTrip(c, "/", ""); err != nil || code != minihttp.StatusOK {
				t.Fatalf("GET / = %d, %v", code, err)
			}
		}, idleTimeout},
		{"slow headers", func(c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
		}, readHeaderTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln := serveInBubble(t, okHandler, 10)
				c := ln.Dial()
				defer c.Close()
				tt.send(c)
				start := time.Now()
				io.Copy(io.Discard, c) // until the server closes
				if d := time.Since(start); d != tt.want {
					t.Errorf("the server closed the connection after %v, want %v", d, tt.want)
				}
			})
		})
	}
}

// Headers beyond maxHeaderBytes are refused with 431; a GET /set_kv of the
// largest key and value, percent-encoded, is not.
func TestHTTPMaxHeaderBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := serveInBubble(t, okHandler, 10)
		limits := chitchat.DefaultLimits()
		largest := "/set_kv/?key=" + strings.Repeat("%E2%82%AC", limits.MaxKeySize/3) +
			"&value=" + strings.Repeat("%E2%82%AC", limits.MaxValueSize/3)
		for _, tt := range []struct {
			name, path, header string
			want               int
		}{
			{"header of half the limit", "/", "X-Big: " + strings.Repeat("a", maxHeaderBytes/2), minihttp.StatusOK},
			{"header of twice the limit", "/", "X-Big: " + strings.Repeat("a", 2*maxHeaderBytes), minihttp.StatusRequestHeaderFieldsTooLarge},
			{"largest key and value on GET", largest, "", minihttp.StatusOK},
		} {
			c := ln.Dial()
			if tt.header != "" {
				tt.header += "\r\n"
			}
			code, err := roundTrip(c, tt.path, tt.header)
			c.Close()
			if err != nil || code != tt.want {
				t.Errorf("%s: %d, %v; want %d", tt.name, code, err, tt.want)
			}
		}
	})
}

// A client that stops reading an answer is dropped after writeTimeout.
func TestHTTPWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wrote := make(chan error, 1)
		ln := serveInBubble(t, secureHeaders(minihttp.HandlerFunc(func(w minihttp.ResponseWriter, _ *minihttp.Request) {
			_, err := w.Write(make([]byte, 1<<20))
			if err == nil {
				err = minihttp.NewResponseController(w).Flush()
			}
			wrote <- err
		})), 10)
		c := ln.Dial()
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		start := time.Now()
		if err := <-wrote; err == nil {
			t.Fatal("the handler wrote 1 MiB to a client that reads nothing")
		}
		if d := time.Since(start); d != writeTimeout {
			t.Errorf("the write failed after %v, want %v", d, writeTimeout)
		}
	})
}

// Every answer, errors included, carries the security headers; /ui keeps
// frame-ancestors 'none' in its own policy.
func TestSecurityHeaders(t *testing.T) {
	_, ts := testNode(t)
	for _, path := range []string{
		"/", "/set_kv/?key=a&value=1", "/set_kv/", "/mark_for_deletion/?key=a", "/healthz", "/metrics",
		"/v1/agent/members", "/v1/keyring", "/overlay/peers", "/ui", "/nope",
	} {
		resp, _ := get(t, ts.URL+path)
		for h, want := range map[string]string{
			"X-Content-Type-Options":       "nosniff",
			"X-Frame-Options":              "DENY",
			"Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, h, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy = %q, want frame-ancestors 'none'", path, csp)
		}
	}
}

// Error answers are in the API's words: an internal error is logged, never
// quoted.
func TestErrorBodiesDoNotEchoInternalErrors(t *testing.T) {
	var logged strings.Builder
	a := &api{log: slog.New(slog.NewTextHandler(&logged, nil))}
	secret := "open /var/lib/secret.db: permission denied"
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"internal", errors.New(secret), minihttp.StatusInternalServerError},
		{"wrapped value too large", fmt.Errorf("%s: %w", secret, chitchat.ErrValueTooLarge), minihttp.StatusRequestEntityTooLarge},
		{"wrapped invalid UTF-8", fmt.Errorf("%s: %w", secret, chitchat.ErrInvalidUTF8), minihttp.StatusBadRequest},
		{"wrapped too many keys", fmt.Errorf("%s: %w", secret, chitchat.ErrTooManyKeys), minihttp.StatusInsufficientStorage},
		{"wrapped closed", fmt.Errorf("%s: %w", secret, chitchat.ErrClosed), minihttp.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := minihttptest.NewRecorder()
			a.writeMutationError(w, tt.err)
			body := w.Body.String()
			var e errorDoc
			if w.Code != tt.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("answer %d %s, want %d with a JSON error", w.Code, body, tt.want)
			}
			if strings.Contains(body, "secret") || strings.Contains(body, "chitchat:") {
				t.Errorf("the answer quotes the error: %s", body)
			}
		})
	}
	if !strings.Contains(logged.String(), secret) {
		t.Errorf("the internal error was not logged: %q", logged.String())
	}
}
