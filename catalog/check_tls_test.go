//go:build !chitchat_omit_tls

package catalog

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// https:// checks speak TLS and verify the server's certificate: a
// self-signed one fails with the verifier's reason.
func TestHTTPSProbeVerifiesCertificate(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hs.Close()
	if err := (Check{HTTP: hs.URL, Interval: time.Second}).Validate(); err != nil {
		t.Fatalf("Validate(https check) = %v, want nil", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := HTTPTCPProbe(ctx, Check{HTTP: hs.URL + "/"})
	if got.Status != Critical || !strings.Contains(got.Output, "certificate") {
		t.Errorf("HTTPTCPProbe(self-signed https) = %+v, want critical naming the certificate", got)
	}
}

// Over TLS the probe reads the answer like over plain TCP.
func TestHTTPSProbeAnswer(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer hs.Close()
	saved := prober.DialTLS
	defer func() { prober.DialTLS = saved }()
	// The test server's own client trusts its certificate: dial as it does.
	tr := hs.Client().Transport.(*http.Transport)
	prober.DialTLS = tlsDialWith(tr.TLSClientConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := HTTPTCPProbe(ctx, Check{HTTP: hs.URL + "/"})
	if want := "HTTP GET " + hs.URL + "/: 429 Too Many Requests"; got.Status != Warning || got.Output != want {
		t.Errorf("HTTPTCPProbe = %+v, want warning %q", got, want)
	}
}

// An https:// check whose context ends while it dials or shakes hands
// fails with the context's error.
func TestHTTPSProbeContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never answers: the handshake hangs
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	url := "https://" + ln.Addr().String() + "/"
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	handshake, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"while dialing", expired},
		{"during the handshake", handshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HTTPTCPProbe(tt.ctx, Check{HTTP: url})
			if want := "HTTP GET " + url + ": context deadline exceeded"; got.Status != Critical || got.Output != want {
				t.Errorf("HTTPTCPProbe = %+v, want critical %q", got, want)
			}
		})
	}
}

// A server that accepts and stalls the TLS handshake fails an https://
// check after tlsHandshakeTimeout, before the check's own timeout, as with
// net/http's Transport.TLSHandshakeTimeout.
func TestHTTPSProbeHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	}()
	saved := tlsHandshakeTimeout
	defer func() { tlsHandshakeTimeout = saved }()
	tlsHandshakeTimeout = 50 * time.Millisecond
	url := "https://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := HTTPTCPProbe(ctx, Check{HTTP: url})
	if want := "HTTP GET " + url + ": TLS handshake timeout"; got.Status != Critical || got.Output != want {
		t.Errorf("HTTPTCPProbe = %+v, want critical %q", got, want)
	}
	if ctx.Err() != nil {
		t.Errorf("HTTPTCPProbe returned when the check's context ended (%v), want after the handshake timeout", ctx.Err())
	}
}
