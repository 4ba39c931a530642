package transport

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Shared conformance suite (upstream's T97 test_transport_udp / T98
// test_transport_in_mem), run against real UDP on 127.0.0.1 and the
// in-memory network. Both use port 0 and reuse the port the Conn reports.

type suiteEnv struct {
	// run runs body with a fresh Transport; the in-memory variant runs it
	// inside a synctest bubble.
	run func(t *testing.T, body func(t *testing.T, tr Transport))
	// virtualTime is true when body runs in a synctest bubble, where
	// "nothing happened for 200ms" can be asserted exactly.
	virtualTime bool
	// openErr is a substring of the error for an address already open.
	openErr string
}

func TestTransportUDP(t *testing.T) {
	runSuite(t, suiteEnv{
		run:     func(t *testing.T, body func(*testing.T, Transport)) { body(t, UDP{}) },
		openErr: "/UDP for gossip",
	})
}

func TestTransportInMem(t *testing.T) {
	runSuite(t, suiteEnv{
		run: func(t *testing.T, body func(*testing.T, Transport)) {
			synctest.Test(t, func(t *testing.T) {
				// No MTU: the network must enforce UDP's limit by itself.
				body(t, mustNetwork(t, NetworkConfig{}))
			})
		},
		virtualTime: true,
		openErr:     "address not available",
	})
}

func runSuite(t *testing.T, env suiteEnv) {
	tests := []struct {
		name string
		body func(t *testing.T, tr Transport)
	}{
		{"open same address twice fails", func(t *testing.T, tr Transport) {
			c := open(t, tr, localhost0)
			_, err := tr.Open(c.LocalAddr())
			if err == nil || !strings.Contains(err.Error(), env.openErr) || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("second Open(%v) = %v, want error containing %q matching EADDRINUSE", c.LocalAddr(), err, env.openErr)
			}
		}},
		{"open close open", func(t *testing.T, tr Transport) {
			c := open(t, tr, localhost0)
			addr := c.LocalAddr()
			if addr.Port() == 0 || addr.Addr() != localhost0.Addr() {
				t.Fatalf("LocalAddr() = %v, want 127.0.0.1 with a chosen port", addr)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := open(t, tr, addr).LocalAddr(); got != addr {
				t.Fatalf("reopened LocalAddr() = %v, want %v", got, addr)
			}
		}},
		{"recv blocks until a datagram is sent", func(t *testing.T, tr Transport) {
			a, b := open(t, tr, localhost0), open(t, tr, localhost0)
			got := recvAsync(b, MaxPayloadSize)
			if env.virtualTime {
				start := time.Now()
				select {
				case r := <-got:
					t.Fatalf("Recv returned %+v before anything was sent", r)
				case <-time.After(200 * time.Millisecond):
				}
				if d := time.Since(start); d != 200*time.Millisecond {
					t.Fatalf("waited %v, want exactly 200ms", d)
				}
			}
			mustSend(t, a, b.LocalAddr(), []byte("syn"))
			r := <-got
			if r.err != nil || string(r.data) != "syn" || r.from != a.LocalAddr() {
				t.Fatalf("Recv = (%q, %v, %v), want (syn, %v, nil)", r.data, r.from, r.err, a.LocalAddr())
			}
		}},
		{"send to an address without listener is not an error", func(t *testing.T, tr Transport) {
			a, gone := open(t, tr, localhost0), open(t, tr, localhost0)
			to := gone.LocalAddr()
			gone.Close()
			mustSend(t, a, to, []byte("hello?"))
		}},
		{"round trip preserves sizes", func(t *testing.T, tr Transport) {
			a, b := open(t, tr, localhost0), open(t, tr, localhost0)
			for _, size := range []int{0, 1, 1400, MaxPayloadSize} {
				p := make([]byte, size)
				for i := range p {
					p[i] = byte(i * 7)
				}
				mustSend(t, a, b.LocalAddr(), p)
				mustRecv(t, b, a.LocalAddr(), p)
			}
		}},
		{"send larger than MaxPayloadSize fails", func(t *testing.T, tr Transport) {
			a := open(t, tr, localhost0)
			err := a.Send(a.LocalAddr(), make([]byte, MaxPayloadSize+1))
			if !errors.Is(err, ErrTooLarge) || IsTransient(err) {
				t.Fatalf("Send(MaxPayloadSize+1) = %v, want non-transient ErrTooLarge", err)
			}
		}},
		{"send across address families fails", func(t *testing.T, tr Transport) {
			v4 := open(t, tr, localhost0)
			if err := v4.Send(netip.MustParseAddrPort("[::1]:9"), []byte("x")); !errors.Is(err, syscall.EAFNOSUPPORT) || IsTransient(err) {
				t.Errorf("Send from %v to [::1]:9 = %v, want non-transient EAFNOSUPPORT", v4.LocalAddr(), err)
			}
			v6, err := tr.Open(netip.MustParseAddrPort("[::1]:0"))
			if err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			defer v6.Close()
			if err := v6.Send(v4.LocalAddr(), []byte("x")); !errors.Is(err, syscall.EAFNOSUPPORT) || IsTransient(err) {
				t.Errorf("Send from %v to %v = %v, want non-transient EAFNOSUPPORT", v6.LocalAddr(), v4.LocalAddr(), err)
			}
		}},
		{"truncated datagram is transient and the next one arrives", func(t *testing.T, tr Transport) {
			// T96 analogue: the transport is bytes-level, so junk payloads are
			// the caller's business; a datagram that does not fit is ours.
			a, b := open(t, tr, localhost0), open(t, tr, localhost0)
			mustSend(t, a, b.LocalAddr(), make([]byte, 100))
			mustSend(t, a, b.LocalAddr(), []byte("next"))
			r := recv(b, 10)
			if !IsTransient(r.err) || !errors.Is(r.err, ErrTooLarge) || len(r.data) != 0 {
				t.Fatalf("Recv(10-byte buffer) = (%d bytes, %v), want 0 bytes and a transient ErrTooLarge", len(r.data), r.err)
			}
			if r.from != a.LocalAddr() {
				t.Errorf("transient error from = %v, want %v", r.from, a.LocalAddr())
			}
			mustRecv(t, b, a.LocalAddr(), []byte("next"))
		}},
		{"close unblocks a pending recv", func(t *testing.T, tr Transport) {
			c := open(t, tr, localhost0)
			got := recvAsync(c, MaxPayloadSize)
			if env.virtualTime {
				synctest.Wait() // the Recv is now blocked
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r := <-got; r.err != ErrClosed || !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("pending Recv returned %v, want ErrClosed", r.err)
			}
		}},
		{"after close", func(t *testing.T, tr Transport) {
			a, b := open(t, tr, localhost0), open(t, tr, localhost0)
			mustSend(t, a, b.LocalAddr(), []byte("unread"))
			if env.virtualTime {
				if got := inboxLen(b); got != 1 {
					t.Fatalf("inbox holds %d datagrams, want 1", got)
				}
			}
			for i := range 2 {
				if err := b.Close(); err != nil {
					t.Fatalf("Close #%d: %v", i+1, err)
				}
			}
			if r := recv(b, MaxPayloadSize); r.err != ErrClosed {
				t.Errorf("Recv after Close = %v, want ErrClosed", r.err)
			}
			if err := b.Send(a.LocalAddr(), []byte("x")); err != ErrClosed {
				t.Errorf("Send after Close = %v, want ErrClosed", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { env.run(t, tt.body) })
	}
}
