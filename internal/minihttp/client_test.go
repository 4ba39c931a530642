package minihttp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
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

// The request line and Host field are what net/http's client writes for
// the same URL (its Request.Write): escaped paths, queries, fragments,
// IPv6 zones and ports.
func TestProberRequestLineAsNetHTTP(t *testing.T) {
	urls := []string{
		"https://example.com",
		"https://example.com/a%2Fb/c?x=1&y=%20#frag",
		"https://example.com/c d?e f",
		"https://example.com/%7Euser/ü?ü=ü",
		"https://example.com/p?",
		"https://example.com/p#",
		"https://example.com//x/../y/./z",
		"https://example.com/;a=b",
		"https://example.com/x?a=%zz",
		"https://user:pass@example.com:8443/x",
		"https://EXAMPLE.com:443/",
		"https://example.com:/",
		"https://[::1]:8443/",
		"https://[fe80::1%25eth0]:8443/",
	}
	for _, rawURL := range urls {
		t.Run(rawURL, func(t *testing.T) {
			req, err := http.NewRequest("GET", rawURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			if err := req.Write(&want); err != nil {
				t.Fatal(err)
			}
			client, server := net.Pipe()
			got := make(chan string, 1)
			go func() {
				defer server.Close()
				br := bufio.NewReader(server)
				line, _ := br.ReadString('\n')
				host, _ := br.ReadString('\n')
				got <- line + host
				for l := host; l != "\r\n" && l != ""; l, _ = br.ReadString('\n') {
				}
				server.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			}()
			p := Prober{DialTLS: func(ctx context.Context, addr, serverName string) (net.Conn, error) { return client, nil }}
			if _, err := p.Get(context.Background(), rawURL); err != nil {
				t.Fatal(err)
			}
			wantHead := strings.SplitAfterN(want.String(), "\n", 3)
			if g, w := <-got, wantHead[0]+wantHead[1]; g != w {
				t.Errorf("request line and Host = %q, want %q (net/http's)", g, w)
			}
		})
	}
}
