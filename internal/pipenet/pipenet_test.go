package pipenet

import (
	"errors"
	"io"
	"net"
	"testing"
)

func TestListener(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	l := Listen(addr)
	if l.Addr() != addr {
		t.Errorf("Addr = %v, want %v", l.Addr(), addr)
	}
	client := l.Dial()
	server, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept = %v", err)
	}
	go client.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v; want the client's bytes", buf, err)
	}
	boom := errors.New("accept4: too many open files")
	l.FailAccept(boom)
	if l.Pending() != 0 {
		t.Errorf("Pending = %d after the Accept, want 0", l.Pending())
	}
	if _, err := l.Accept(); err != boom {
		t.Errorf("Accept after FailAccept = %v, want %v", err, boom)
	}
	l.Close()
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
