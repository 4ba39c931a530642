package minihttp

import (
	"context"
	"net"
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
