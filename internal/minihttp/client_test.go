package minihttp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// closedAddr returns a loopback address where nothing listens: a port that
// was just free.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A failed GET's error names the URL without its password, as net/http's
// client's does.
func TestProberErrorRedactsPassword(t *testing.T) {
	var p Prober
	_, err := p.Get(context.Background(), "http://probe:s3cret@"+closedAddr(t)+"/")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "probe:xxxxx@") {
		t.Errorf("Get = %v, want an error naming the URL with its password redacted", err)
	}
}

// The Host field is the URL's host without a zone or an empty port, as
// net/http's client writes it.
func TestProberHostHeader(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"name and port", "http://example.com:8080/", "example.com:8080"},
		{"default port kept", "http://example.com:80/", "example.com:80"},
		{"empty port", "http://example.com:/", "example.com"},
		{"IPv6", "http://[::1]:8080/", "[::1]:8080"},
		{"IPv6 zone", "http://[fe80::1%25eth0]:8080/", "[fe80::1]:8080"},
		{"IPv6 zone, empty port", "http://[fe80::1%25eth0]:/", "[fe80::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostHeader(u); got != tt.want {
				t.Errorf("hostHeader(%s) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

// readHead reads a request's head from c.
func readHead(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// The GET's context bounds every stage of the exchange with a server that
// stalls (over net.Pipe, through DialTLS, in a synctest bubble): Get
// returns when the context ends, exactly, and no goroutine of it outlives
// it (the bubble would not end).
func TestProberContextBoundsEveryStage(t *testing.T) {
	const timeout = 3 * time.Second
	tests := []struct {
		name       string
		serve      func(c net.Conn)
		wantStatus string // "": the context's error
	}{
		{"request never read", func(c net.Conn) {}, ""},
		{"no answer", readHead, ""},
		{"head trickled", func(c net.Conn) {
			readHead(c)
			for _, b := range []byte("HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, ""},
		{"interim answers without end", func(c net.Conn) {
			readHead(c)
			for {
				if _, err := c.Write([]byte("HTTP/1.1 102 Processing\r\n\r\n")); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}, ""},
		{"body cut short", func(c net.Conn) { // judged on its head, once the context ends
			readHead(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
		}, "200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server := net.Pipe()
				returned, served := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(served)
					tt.serve(server) // returns once a write fails: the client closed
					<-returned
					server.Close()
				}()
				p := Prober{DialTLS: func(ctx context.Context, addr, serverName string) (net.Conn, error) { return client, nil }}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				start := time.Now()
				resp, err := p.Get(ctx, "https://service.test/health")
				if d := time.Since(start); d != timeout {
					t.Errorf("Get returned after %v, want %v", d, timeout)
				}
				close(returned)
				<-served // lets the clock run until the server sees the close
				switch {
				case tt.wantStatus == "" && !errors.Is(err, context.DeadlineExceeded):
					t.Errorf("Get = %+v, %v; want the context's error", resp, err)
				case tt.wantStatus != "" && (err != nil || resp.Status != tt.wantStatus):
					t.Errorf("Get = %+v, %v; want %q", resp, err, tt.wantStatus)
				}
			})
		})
	}
}
