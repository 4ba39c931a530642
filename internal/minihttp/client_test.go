package minihttp

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
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
