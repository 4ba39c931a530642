package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/internal/pipenet"
)

// streamsSuite checks a Streams implementation: a dialled stream carries
// bytes both ways, and a second listener on the address is refused.
func streamsSuite(t *testing.T, s Streams, at, from netip.AddrPort) {
	t.Helper()
	ln, err := s.Listen(at)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	at = ln.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	if _, err := s.Listen(at); err == nil {
		t.Error("a second listener on the same address was accepted")
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write(append(buf, '!'))
		done <- err
	}()
	c, err := s.Dial(context.Background(), from, at)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello!" {
		t.Fatalf("read %q, %v; want hello!", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStreamsMem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _ := NewNetwork(NetworkConfig{})
		a, b := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
		streamsSuite(t, n, a, b)
		// Cuts apply to streams, at dial time.
		ln, err := n.Listen(a)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		n.Cut(a, b)
		if _, err := n.Dial(context.Background(), b, a); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial across a cut: %v, want ECONNREFUSED", err)
		}
		n.Restore(a, b)
		c, err := n.Dial(context.Background(), b, a)
		if err != nil {
			t.Fatalf("dial after the cut was restored: %v", err)
		}
		c.Close()
		if _, err := n.Dial(context.Background(), b, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial to nobody: %v, want ECONNREFUSED", err)
		}
	})
}

// Real TCP on loopback (a free port).
func TestStreamsUDPIsTCP(t *testing.T) {
	streamsSuite(t, UDP{}, netip.MustParseAddrPort("127.0.0.1:0"), netip.AddrPort{})
}

func TestStreamsThroughWrappers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _ := NewNetwork(NetworkConfig{})
		l, _ := Lossy(n, 1, 1) // every datagram dropped: streams are not
		streamsSuite(t, l.(Streams), netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"))
		streamsSuite(t, Counting(n), netip.MustParseAddrPort("127.0.0.1:3"), netip.MustParseAddrPort("127.0.0.1:4"))
	})
}

// One TCP port, two protocols: stream frames (first byte below 0x20) go to
// one listener, the rest (HTTP here) to the other, first byte included.
func TestSplitListener(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other, streams := SplitListener(ln)
	defer other.Close()
	addr := ln.Addr().String()
	send := func(b []byte) {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		t.Cleanup(func() { c.Close() })
	}
	read := func(l net.Listener, n int) string {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		return string(buf)
	}
	send([]byte("GET / HTTP/1.1\r\n"))
	if got := read(other, 5); got != "GET /" {
		t.Errorf("other read %q, want GET /", got)
	}
	send([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	if got := read(streams, 7); got != "\x00\x00\x00\x03abc" {
		t.Errorf("streams read %q", got)
	}
	streams.Close()
	if _, err := other.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// A failed accept that is not a closed listener (out of file descriptors)
// is waited out: the next connection is still routed, after the backoff.
func TestSplitListenerSurvivesAcceptErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})
		other, _ := SplitListener(ln)
		defer other.Close()
		start := time.Now()
		ln.FailAccept(&net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE})
		synctest.Wait()
		c := ln.Dial()
		defer c.Close()
		go c.Write([]byte("GET /"))
		got, err := other.Accept()
		if err != nil {
			t.Fatalf("Accept after EMFILE = %v, want the next connection", err)
		}
		got.Close()
		if d := time.Since(start); d != 5*time.Millisecond {
			t.Errorf("routed after %v, want after the first backoff, 5ms", d)
		}
	})
}
