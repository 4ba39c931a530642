package overlay

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// TestAddrBind: the one-address bind carries datagrams both ways, reports
// its port, refuses a second Open, and its receiver ends with net.ErrClosed
// at Close, after which it opens again.
func TestAddrBind(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP")
	}
	a, b := newAddrBind(loopback), newAddrBind(loopback)
	recvA, portA, err := a.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, portB, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if portA == 0 || portB == 0 || len(recvA) != 1 || a.BatchSize() != 1 {
		t.Fatalf("Open: ports %d, %d, %d receivers", portA, portB, len(recvA))
	}
	if _, _, err := a.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Errorf("second Open: %v, want ErrBindAlreadyOpen", err)
	}

	toA, err := b.ParseEndpoint(netip.AddrPortFrom(loopback, portA).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send([][]byte{[]byte("one"), []byte("two")}, toA); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		bufs, sizes, eps := [][]byte{make([]byte, 64)}, make([]int, 1), make([]conn.Endpoint, 1)
		n, err := recvA[0](bufs, sizes, eps)
		if err != nil || n != 1 {
			t.Fatalf("receive: %d, %v", n, err)
		}
		if got := string(bufs[0][:sizes[0]]); got != want {
			t.Errorf("received %q, want %q", got, want)
		}
		from := netip.AddrPortFrom(loopback, portB)
		if eps[0].DstToString() != from.String() || eps[0].DstIP() != loopback {
			t.Errorf("sender endpoint %s, want %s", eps[0].DstToString(), from)
		}
		if wantBytes, _ := from.MarshalBinary(); string(eps[0].DstToBytes()) != string(wantBytes) {
			t.Errorf("DstToBytes differs from the address's binary form")
		}
	}

	if _, err := a.ParseEndpoint("127.0.0.1"); err == nil {
		t.Error("ParseEndpoint without a port: want an error")
	}
	if ep, err := a.ParseEndpoint("[::ffff:127.0.0.1]:9"); err != nil || ep.DstIP() != loopback {
		t.Errorf("ParseEndpoint of a mapped address: %v, %v; want it unmapped", ep, err)
	}
	stdEP, err := conn.NewStdNetBind().ParseEndpoint("127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send([][]byte{{1}}, stdEP); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Errorf("Send to another bind's endpoint: %v, want ErrWrongEndpointType", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := recvA[0]([][]byte{make([]byte, 64)}, make([]int, 1), make([]conn.Endpoint, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after Close: %v, want net.ErrClosed", err)
	}
	if err := a.Send([][]byte{{1}}, toA); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, p, err := a.Open(portA); err != nil || p != portA {
		t.Errorf("reopen on port %d: %d, %v", portA, p, err)
	}
}
