package overlay

// The end-to-end test is the package's one real-network test: three nodes
// on 127.0.0.1 (ports picked by the OS) gossip over UDP, bring up
// userspace WireGuard devices, and exchange bytes over TCP between their
// overlay addresses, which only the tunnels can reach. It runs outside
// synctest (real sockets and wireguard-go's timers).
//
// Waits are event-driven (each mesh reports its reconciles through
// OnReconcile) and bounded by one context deadline. The only retry is the
// TCP dial: a WireGuard handshake is timer-driven, and an initiation that
// reaches a peer before that peer has configured us is dropped and retried
// by wireguard-go 5 s later. Each dial attempt has a 1 s timeout; the
// overall deadline bounds the number of attempts. Persistent keepalives
// are off so that no handshake starts before both sides are configured.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/failuredetector"
	"github.com/gossipkit/chitchat-go/transport"
)

const echoPort = 7000

var loopback = netip.MustParseAddr("127.0.0.1")

// e2eGossip is a fast gossip configuration for the real-network test: 100
// ms rounds, and a failure detector tolerant enough (phi 50: 5 s of
// silence) that a loaded CI machine never declares a false death.
func e2eGossip(seeds ...string) GossipConfig {
	return GossipConfig{
		ClusterID:       "overlay-e2e",
		ListenAddr:      netip.AddrPortFrom(loopback, 0),
		Seeds:           seeds,
		GossipInterval:  100 * time.Millisecond,
		FailureDetector: failuredetector.Config{InitialInterval: 100 * time.Millisecond, PhiThreshold: 50},
		LeaveTimeout:    2 * time.Second,
	}
}

// e2eNode is a mesh and the reconciles it reported.
type e2eNode struct {
	id     uint64
	m      *Mesh
	recons chan struct{}

	mu  sync.Mutex
	err error // first reconcile error
}

func (n *e2eNode) reconcileErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func e2eMeshConfig(id uint64, n *e2eNode) MeshConfig {
	return MeshConfig{
		NodeID:       id,
		OverlayIP:    netip.AddrFrom4([4]byte{100, 64, 0, byte(id)}),
		EndpointAddr: loopback,
		ListenAddr:   loopback, // tests never listen beyond 127.0.0.1
		// Every node of the test is on this host.
		AllowLoopbackEndpoints: true,
		OnReconcile: func(_ Diff, err error) {
			if err != nil {
				n.mu.Lock()
				if n.err == nil {
					n.err = err
				}
				n.mu.Unlock()
			}
			select {
			case n.recons <- struct{}{}:
			default: // a wake-up is pending: the waiter re-reads Peers()
			}
		},
	}
}

// startEcho serves one line per connection on each overlay address: it
// answers "<id> got <line>".
func startEcho(tb testing.TB, n *e2eNode) {
	tb.Helper()
	for _, ip := range n.m.OverlayIPs() {
		ln, err := n.m.Listen("tcp", netip.AddrPortFrom(ip, echoPort).String())
		if err != nil {
			tb.Fatal(err)
		}
		serveEcho(tb, n, ln)
	}
}

func serveEcho(tb testing.TB, n *e2eNode, ln net.Listener) {
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%d got %s", n.id, line)
			})
		}
	})
}

// waitPeers waits until n's device is configured with exactly the public
// keys want.
func waitPeers(ctx context.Context, tb testing.TB, n *e2eNode, want ...Key) {
	tb.Helper()
	for {
		if err := n.reconcileErr(); err != nil {
			tb.Fatalf("node %d: reconcile failed: %v", n.id, err)
		}
		got := map[Key]bool{}
		for _, p := range n.m.Peers() {
			got[p.PublicKey] = true
		}
		match := len(got) == len(want)
		for _, k := range want {
			match = match && got[k]
		}
		if match {
			return
		}
		select {
		case <-n.recons:
		case <-ctx.Done():
			tb.Fatalf("node %d: device peers %v, want %v: %v", n.id, n.m.Peers(), want, ctx.Err())
		}
	}
}

// exchange sends one line from a to b's echo server through the overlay
// and checks the answer. Only the dial is retried (see the file comment).
func exchange(ctx context.Context, tb testing.TB, a, b *e2eNode) {
	tb.Helper()
	exchangeVia(ctx, tb, a, b, b.m.OverlayIP())
}

// exchangeVia is exchange to one of b's overlay addresses.
func exchangeVia(ctx context.Context, tb testing.TB, a, b *e2eNode, ip netip.Addr) {
	tb.Helper()
	addr := netip.AddrPortFrom(ip, echoPort).String()
	var c net.Conn
	var err error
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err = a.m.Dial(dctx, "tcp", addr)
		cancel()
		if err == nil {
			break
		}
		if attempt == 1 {
			tb.Logf("dial: %v", err)
		}
		if ctx.Err() != nil {
			tb.Fatalf("%d→%d: dial %s: %v after %d attempts", a.id, b.id, addr, err, attempt)
		}
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	msg := fmt.Sprintf("hello from %d to %d", a.id, b.id)
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		tb.Fatalf("%d→%d: write: %v", a.id, b.id, err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		tb.Fatalf("%d→%d: read: %v", a.id, b.id, err)
	}
	if want := fmt.Sprintf("%d got %s\n", b.id, msg); string(reply) != want {
		tb.Fatalf("%d→%d: reply %q, want %q", a.id, b.id, reply, want)
	}
	if remote := c.RemoteAddr().String(); remote != addr {
		tb.Errorf("%d→%d: connected to %s, want the overlay address %s", a.id, b.id, remote, addr)
	}
}

func exchangeAll(ctx context.Context, tb testing.TB, nodes ...*e2eNode) {
	tb.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				exchange(ctx, tb, a, b)
			}
		}
	}
}

// devicePeer returns the "get" section of the device's peer with key k.
func devicePeer(tb testing.TB, m *Mesh, k Key) (section string, ok bool) {
	tb.Helper()
	get, err := m.IpcGet()
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(get, "public_key="+k.Hex()+"\n")
	if !ok {
		return "", false
	}
	section, _, _ = strings.Cut(rest, "public_key=")
	return section, true
}

func TestMeshEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP and WireGuard devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()

	var nodes []*e2eNode
	newNode := func(id uint64) *e2eNode {
		n := &e2eNode{id: id, recons: make(chan struct{}, 1)}
		nodes = append(nodes, n)
		return n
	}

	// Node 1 starts its own chitchat node (StartMesh).
	n1 := newNode(1)
	m, err := StartMesh(ctx, e2eMeshConfig(1, n1), e2eGossip())
	if err != nil {
		t.Fatal(err)
	}
	n1.m = m
	defer n1.m.Close()
	seed := n1.m.Pool().Server().Self().Addr.String()

	// Node 2 too, with its key in a file that StartMesh creates.
	n2 := newNode(2)
	cfg2 := e2eMeshConfig(2, n2)
	cfg2.PrivateKeyFile = filepath.Join(t.TempDir(), "wg2.key")
	if n2.m, err = StartMesh(ctx, cfg2, e2eGossip(seed)); err != nil {
		t.Fatal(err)
	}
	defer n2.m.Close()
	if k, err := ReadKeyFile(cfg2.PrivateKeyFile); err != nil || k.PublicKey() != n2.m.PublicKey() {
		t.Fatalf("key file: %v, %v", k, err)
	}

	// Node 3 runs on a chitchat node of its own (NewMesh), as an
	// application that already gossips would.
	n3 := newNode(3)
	conn, err := transport.UDP{}.Open(netip.AddrPortFrom(loopback, 0))
	if err != nil {
		t.Fatal(err)
	}
	g := e2eGossip(seed)
	srv, err := chitchat.Spawn(ctx, chitchat.Config{
		ID:              chitchat.NodeID{Name: "app-3", Addr: conn.LocalAddr()},
		ClusterID:       g.ClusterID,
		GossipInterval:  g.GossipInterval,
		Seeds:           g.Seeds,
		FailureDetector: g.FailureDetector,
	}, boundTransport{conn})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if n3.m, err = NewMesh(e2eMeshConfig(3, n3), srv); err != nil {
		t.Fatal(err)
	}
	defer n3.m.Close()

	for _, n := range nodes {
		startEcho(t, n)
	}
	k1, k2, k3 := n1.m.PublicKey(), n2.m.PublicKey(), n3.m.PublicKey()
	waitPeers(ctx, t, n1, k2, k3)
	waitPeers(ctx, t, n2, k1, k3)
	waitPeers(ctx, t, n3, k1, k2)
	t.Logf("mesh formed after %v", time.Since(start))

	exchangeAll(ctx, t, n1, n2, n3)
	if sec, ok := devicePeer(t, n2.m, k1); !ok || strings.Contains(sec, "rx_bytes=0\n") {
		t.Errorf("node 2's device shows no traffic from node 1:\n%s", sec)
	}
	// Probes through the tunnel are answered.
	for _, r := range n2.m.ProbePeers(ctx) {
		if r.Err != nil || r.RTT <= 0 || (r.NodeID != 1 && r.NodeID != 3) {
			t.Errorf("node 2's probe: %+v, want an answer from worker 1 or 3", r)
		}
	}
	// Its statistics say so, per worker.
	st := n2.m.Stats()
	if len(st.PeerStats) != 2 || st.Peers != 2 || st.Pool.Peers != 2 {
		t.Errorf("node 2's Stats() = %+v, want 2 peers", st)
	}
	for _, ps := range st.PeerStats {
		if (ps.NodeID != 1 && ps.NodeID != 3) || ps.LastHandshake.IsZero() || ps.RxBytes == 0 || ps.TxBytes == 0 ||
			ps.OverlayIP != e2eMeshConfig(ps.NodeID, n2).OverlayIP || !ps.ProbeAnswered || ps.LastProbeReply.IsZero() {
			t.Errorf("node 2's stats of a peer = %+v, want worker 1 or 3 with a handshake and traffic", ps)
		}
	}
	t.Logf("all pairs exchanged after %v", time.Since(start))

	// Node 3 rotates its key: the others replace the peer, and traffic to
	// and from it works again.
	newKey, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := n3.m.RotateKey(newKey); err != nil {
		t.Fatal(err)
	}
	k3new := newKey.PublicKey()
	if n3.m.PublicKey() != k3new || n3.m.Pool().Self().PublicKey != k3new {
		t.Fatal("the mesh does not report the new key")
	}
	waitPeers(ctx, t, n1, k2, k3new)
	waitPeers(ctx, t, n2, k1, k3new)
	exchange(ctx, t, n1, n3)
	exchange(ctx, t, n2, n3)
	exchange(ctx, t, n3, n1)
	if _, ok := devicePeer(t, n1.m, k3); ok {
		t.Error("node 1's device still has node 3's old key")
	}
	t.Logf("rotation done after %v", time.Since(start))

	// Node 2 stops: the others remove it from their devices.
	if err := n2.m.Close(); err != nil {
		t.Fatal(err)
	}
	waitPeers(ctx, t, n1, k3new)
	waitPeers(ctx, t, n3, k1)
	for _, n := range []*e2eNode{n1, n3} {
		if _, ok := devicePeer(t, n.m, k2); ok {
			t.Errorf("node %d's device still lists node 2", n.id)
		}
	}
	exchange(ctx, t, n1, n3)
	t.Logf("stop handled after %v", time.Since(start))

	// The wg-quick view of node 1 matches its device.
	wq := RenderWGQuick(n1.m.WGConfig(), true)
	if !strings.Contains(wq, "PublicKey = "+k3new.String()) || strings.Contains(wq, k2.String()) {
		t.Errorf("wg-quick of node 1:\n%s", wq)
	}

	// Close node 1 while node 3 still runs, so that its leave is
	// acknowledged at once rather than timing out.
	if err := n1.m.Close(); err != nil {
		t.Fatal(err)
	}
	waitPeers(ctx, t, n3)
}

func TestMeshListenAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP")
	}
	n := &e2eNode{id: 1, recons: make(chan struct{}, 1)}
	cfg := e2eMeshConfig(1, n)
	cfg.VerboseDevice = true // wireguard-go's log, at Debug, to the discarding default logger
	m, err := StartMesh(context.Background(), cfg, e2eGossip())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n.m = m
	if ep := m.Endpoint(); ep.Addr() != loopback || ep.Port() == 0 {
		t.Errorf("Endpoint() = %v", ep)
	}
	if got := m.WGConfig(); got.ListenPort != m.Endpoint().Port() || got.MTU != DefaultMTU || len(got.Peers) != 0 {
		t.Errorf("WGConfig() = %+v", got)
	}
	// ListenAddr 127.0.0.1: the WireGuard port is bound there only, so the
	// same port is free on another loopback address (a wildcard bind would
	// hold it on every address).
	other, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), m.Endpoint().Port())))
	if err != nil {
		t.Errorf("WireGuard port %d is not free on 127.0.0.2: the device listens beyond ListenAddr: %v", m.Endpoint().Port(), err)
	} else {
		other.Close()
	}
	tests := []struct {
		name, network, addr string
		packet, wantErr     bool
	}{
		{name: "port only", network: "tcp", addr: ":7001"},
		{name: "overlay address", network: "tcp4", addr: "100.64.0.1:7002"},
		{name: "unspecified", network: "tcp", addr: "0.0.0.0:7003"},
		{name: "udp", network: "udp", addr: ":7004", packet: true},
		{name: "other address", network: "tcp", addr: "100.64.0.2:7005", wantErr: true},
		{name: "bad port", network: "tcp", addr: ":http", wantErr: true},
		{name: "no port", network: "tcp", addr: "100.64.0.1", wantErr: true},
		{name: "tcp via ListenPacket", network: "tcp", addr: ":7006", packet: true, wantErr: true},
		{name: "udp via Listen", network: "udp", addr: ":7007", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c io.Closer
			var err error
			if tt.packet {
				c, err = m.ListenPacket(tt.network, tt.addr)
			} else {
				c, err = m.Listen(tt.network, tt.addr)
			}
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
	if err := m.RotateKey(PrivateKey{}); err == nil {
		t.Error("RotateKey(zero): want an error")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMeshConfigValidate(t *testing.T) {
	dir := t.TempDir()
	badKeyFile := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(badKeyFile, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := MeshConfig{
		NodeID:                 1,
		OverlayIP:              netip.MustParseAddr("100.64.0.1"),
		EndpointAddr:           loopback,
		AllowLoopbackEndpoints: true,
	}
	tests := []struct {
		name string
		mut  func(*MeshConfig)
		want []string
	}{
		{name: "minimal", mut: func(*MeshConfig) {}},
		{name: "key file to create", mut: func(c *MeshConfig) { c.PrivateKeyFile = filepath.Join(dir, "new.key") }},
		{name: "IPv6 overlay", mut: func(c *MeshConfig) { c.OverlayIP = netip.MustParseAddr("fd00::1"); c.MTU = 1280 }},
		{name: "everything wrong", mut: func(c *MeshConfig) {
			*c = MeshConfig{
				PrivateKey:          testPrivateKey(1),
				PrivateKeyFile:      badKeyFile,
				ListenPort:          70000,
				MTU:                 100,
				PersistentKeepalive: 1500 * time.Millisecond,
			}
		}, want: []string{"both PrivateKey and PrivateKeyFile", "ListenPort 70000", "OverlayIP is not set", "EndpointAddr is not set", "MTU 100", "PersistentKeepalive"}},
		{name: "unreadable key file", mut: func(c *MeshConfig) { c.PrivateKeyFile = badKeyFile }, want: []string{"bad.key"}},
		{name: "key file in missing dir", mut: func(c *MeshConfig) { c.PrivateKeyFile = filepath.Join(dir, "no", "k") }, want: []string{"cannot be created"}},
		{name: "unspecified addresses", mut: func(c *MeshConfig) {
			c.OverlayIP = netip.IPv4Unspecified()
			c.EndpointAddr = netip.IPv6Unspecified()
		}, want: []string{"OverlayIP 0.0.0.0", "EndpointAddr :: is unspecified"}},
		{name: "mapped overlay", mut: func(c *MeshConfig) { c.OverlayIP = netip.MustParseAddr("::ffff:100.64.0.1") }, want: []string{"OverlayIP"}},
		{name: "listen on one address", mut: func(c *MeshConfig) { c.ListenAddr = loopback }},
		{name: "multicast listen address", mut: func(c *MeshConfig) { c.ListenAddr = netip.MustParseAddr("224.0.0.1") }, want: []string{"ListenAddr 224.0.0.1"}},
		{name: "loopback endpoint without the opt-in", mut: func(c *MeshConfig) { c.AllowLoopbackEndpoints = false }, want: []string{"AllowLoopbackEndpoints"}},
		{name: "public endpoint", mut: func(c *MeshConfig) {
			c.AllowLoopbackEndpoints = false
			c.EndpointAddr = netip.MustParseAddr("203.0.113.7")
		}},
		{name: "refused endpoints", mut: func(c *MeshConfig) { c.EndpointAddr = netip.MustParseAddr("169.254.1.1") }, want: []string{"link-local"}},
		{name: "overlay IP outside the private ranges", mut: func(c *MeshConfig) { c.OverlayIP = netip.MustParseAddr("8.8.8.8") }, want: []string{"outside the overlay prefixes"}},
		{name: "overlay IP in the configured prefix", mut: func(c *MeshConfig) {
			c.OverlayIP = netip.MustParseAddr("8.8.8.8")
			c.OverlayPrefixes = []netip.Prefix{netip.MustParsePrefix("8.8.8.0/24")}
		}},
		{name: "loopback overlay IP", mut: func(c *MeshConfig) { c.OverlayIP = netip.MustParseAddr("127.0.0.2") }, want: []string{"loopback"}},
		{name: "TUN device", mut: func(c *MeshConfig) { c.Device, c.Interface = DeviceTUN, "chitchat0" }},
		{name: "TUN device without a name", mut: func(c *MeshConfig) { c.Device = DeviceTUN }, want: []string{"Interface: empty"}},
		{name: "interface name too long", mut: func(c *MeshConfig) { c.Device, c.Interface = DeviceKernel, "a-very-long-name0" }, want: []string{"longer than 15"}},
		{name: "interface for a netstack", mut: func(c *MeshConfig) { c.Interface = "wg0" }, want: []string{"netstack"}},
		{name: "kernel device on one address", mut: func(c *MeshConfig) {
			c.Device, c.Interface, c.ListenAddr = DeviceKernel, "wg0", loopback
		}, want: []string{"kernel WireGuard device listens on every address"}},
		{name: "unknown device", mut: func(c *MeshConfig) { c.Device = 9 }, want: []string{"DeviceKind(9)"}},
		{name: "dual-stack", mut: func(c *MeshConfig) { c.OverlayIP6 = netip.MustParseAddr("fd00::1") }},
		{name: "dual-stack with an IPv6 OverlayIP", mut: func(c *MeshConfig) {
			c.OverlayIP, c.OverlayIP6 = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
		}, want: []string{"needs an IPv4 OverlayIP"}},
		{name: "OverlayIP6 not IPv6", mut: func(c *MeshConfig) { c.OverlayIP6 = netip.MustParseAddr("100.64.0.9") }, want: []string{"OverlayIP6"}},
		{name: "bad prefix", mut: func(c *MeshConfig) { c.OverlayPrefixes = []netip.Prefix{{}} }, want: []string{"OverlayPrefixes"}},
		{name: "IPv6 small MTU", mut: func(c *MeshConfig) { c.OverlayIP = netip.MustParseAddr("fd00::1"); c.MTU = 1000 }, want: []string{"1280"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			checkErrors(t, c.Validate(), tt.want)
		})
	}
	if _, err := StartMesh(context.Background(), MeshConfig{}, GossipConfig{}); err == nil {
		t.Error("StartMesh with empty configs: want an error")
	}
	if _, err := NewMesh(MeshConfig{}, nil); err == nil {
		t.Error("NewMesh with an empty config: want an error")
	}
}

// TestStartMeshPortInUse: a failure to bind the WireGuard port is an error,
// and nothing is left running.
func TestStartMeshPortInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP")
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := e2eMeshConfig(1, &e2eNode{recons: make(chan struct{}, 1)})
	cfg.ListenPort = pc.LocalAddr().(*net.UDPAddr).Port
	_, err = StartMesh(context.Background(), cfg, e2eGossip())
	if err == nil || !strings.Contains(err.Error(), "WireGuard device") {
		t.Errorf("err = %v, want a device error", err)
	}
	var ipcErr interface{ ErrorCode() int64 }
	if err != nil && !errors.As(err, &ipcErr) {
		t.Logf("error is not an IPCError: %v", err)
	}
}

// fakeDevice records IpcSet bodies and their times, and fails the ones it
// is told to.
type fakeDevice struct {
	mu   sync.Mutex
	sets []string
	at   []time.Time
	fail int // fail this many more IpcSet calls
}

func (d *fakeDevice) IpcSet(s string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sets = append(d.sets, s)
	d.at = append(d.at, time.Now())
	if d.fail > 0 {
		d.fail--
		return errors.New("fake IpcSet failure")
	}
	return nil
}

func (d *fakeDevice) IpcGet() (string, error) { return "", nil }
func (d *fakeDevice) Close()                  {}

func (d *fakeDevice) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sets
	d.sets = nil
	return s
}

// TestReconcile drives the reconcile step against a fake device: diffs
// when the device is in sync, a full replacement after a failed IpcSet,
// nothing when nothing changed.
func TestReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, b, evA, _ := joinedPair(t, net)
		dev := &fakeDevice{fail: 1}
		var diffs []Diff
		var errs []error
		m := &Mesh{
			cfg: MeshConfig{
				OverlayIP:              testInfo(1).OverlayIP,
				PersistentKeepalive:    25 * time.Second,
				AllowLoopbackEndpoints: true,
				OnReconcile:            func(d Diff, err error) { diffs, errs = append(diffs, d), append(errs, err) },
			},
			log:  slog.New(slog.DiscardHandler),
			dev:  &wgGoDevice{ipc: dev},
			pool: a,
			priv: testPrivateKey(1),
		}
		peer2 := Peer{
			PublicKey:           testInfo(2).PublicKey,
			Endpoint:            testInfo(2).Endpoint,
			AllowedIPs:          []netip.Prefix{hostPrefix(testInfo(2).OverlayIP)},
			PersistentKeepalive: 25 * time.Second,
		}

		m.reconcile() // fails: the device's peers are now unknown
		if len(errs) != 1 || errs[0] == nil || len(m.Peers()) != 0 {
			t.Fatalf("after a failed IpcSet: errs %v, applied %v", errs, m.Peers())
		}
		m.reconcile() // replaces everything
		sets := dev.take()
		if len(sets) != 2 || !strings.HasPrefix(sets[1], "replace_peers=true\npublic_key="+peer2.PublicKey.Hex()) {
			t.Fatalf("IpcSet bodies %q", sets)
		}
		if diff := cmp.Diff([]Peer{peer2}, m.Peers(), cmpInfo); diff != "" {
			t.Errorf("applied mismatch (-want +got):\n%s", diff)
		}

		m.reconcile() // nothing changed: no IpcSet, no callback
		if sets := dev.take(); len(sets) != 0 || len(diffs) != 2 {
			t.Errorf("no-op reconcile: IpcSet %q, %d callbacks", sets, len(diffs))
		}

		// A peer that moves is changed in place.
		moved := testInfo(2)
		moved.Endpoint = netip.MustParseAddrPort("127.0.0.1:60002")
		if err := b.AnnounceSelf(moved); err != nil {
			t.Fatal(err)
		}
		expect(t, evA, Updated, moved)
		m.reconcile()
		peer2.Endpoint = moved.Endpoint
		want := RenderUAPIDiff(Diff{Changed: []Peer{peer2}})
		if diff := cmp.Diff([]string{want}, dev.take()); diff != "" {
			t.Errorf("IpcSet bodies mismatch (-want +got):\n%s", diff)
		}
		if len(errs) != 3 || errs[2] != nil || len(diffs[2].Changed) != 1 {
			t.Errorf("callbacks: %v %v", diffs, errs)
		}
	})
}

// TestReconcileRefused: a peer whose endpoint the address rules refuse is
// not configured, and is counted and logged once, not at every reconcile.
func TestReconcileRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, _, _, _ := joinedPair(t, net)
		var logs lockedBuffer
		dev := &fakeDevice{}
		m := &Mesh{
			cfg:  MeshConfig{OverlayIP: testInfo(1).OverlayIP}, // no AllowLoopbackEndpoints: 127.0.0.1 is refused
			log:  slog.New(slog.NewTextHandler(&logs, nil)),
			dev:  &wgGoDevice{ipc: dev},
			pool: a,
			priv: testPrivateKey(1),
		}
		m.reconcile()
		m.reconcile()
		if st := m.Stats(); st.Refused != 1 || st.Peers != 0 || st.Pool.Peers != 1 {
			t.Errorf("Stats() = %+v, want 1 refused, no device peer, 1 pool peer", st)
		}
		if n := logs.count("level=WARN msg=\"overlay peer refused\""); n != 1 {
			t.Errorf("%d warnings, want 1:\n%s", n, logs.b.String())
		}
		if sets := dev.take(); len(sets) != 0 {
			t.Errorf("IpcSet %q, want none", sets)
		}
	})
}

// TestReconcileRetries: a failed device update is retried with backoff
// until the device matches, though the cluster stays the same (no change
// of the pool's view would trigger a reconcile).
func TestReconcileRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, _, _, _ := joinedPair(t, net)
		dev := &fakeDevice{fail: 4}
		m := &Mesh{
			cfg:  MeshConfig{OverlayIP: testInfo(1).OverlayIP, AllowLoopbackEndpoints: true},
			log:  slog.New(slog.DiscardHandler),
			dev:  &wgGoDevice{ipc: dev},
			pool: a,
			priv: testPrivateKey(1),
		}
		start := time.Now()
		m.startReconciling()
		defer m.Close()
		time.Sleep(time.Minute)
		synctest.Wait()

		dev.mu.Lock()
		var got []time.Duration
		for _, at := range dev.at {
			got = append(got, at.Sub(start))
		}
		dev.mu.Unlock()
		// Fails at 0, 1s, 3s and 7s; the retry 8 s later succeeds.
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("IpcSet times mismatch (-want +got):\n%s", diff)
		}
		if n := len(m.Peers()); n != 1 {
			t.Errorf("device has %d peers, want 1", n)
		}
		if st := m.Stats(); st.ReconcileFailures != 4 || st.ReconcileRetries != 4 {
			t.Errorf("Stats() = %+v, want 4 failures and 4 retries", st)
		}
	})
}

func TestReconcileBackoffCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newNetwork(t)
		a, _, _, _ := joinedPair(t, net)
		dev := &fakeDevice{fail: 1000}
		m := &Mesh{
			cfg:  MeshConfig{OverlayIP: testInfo(1).OverlayIP, AllowLoopbackEndpoints: true},
			log:  slog.New(slog.DiscardHandler),
			dev:  &wgGoDevice{ipc: dev},
			pool: a,
			priv: testPrivateKey(1),
		}
		m.startReconciling()
		defer m.Close()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		dev.mu.Lock()
		defer dev.mu.Unlock()
		var gaps []time.Duration
		for i := 1; i < len(dev.at); i++ {
			gaps = append(gaps, dev.at[i].Sub(dev.at[i-1]))
		}
		if len(gaps) < 10 || gaps[len(gaps)-1] != ReconcileRetryMax || slices.Max(gaps) != ReconcileRetryMax {
			t.Errorf("gaps between attempts %v, want them to grow to %v and stay there", gaps, ReconcileRetryMax)
		}
	})
}

// TestMeshDualStack: two dual-stack nodes over an IPv6 underlay reach each
// other on both overlay addresses; the interface MTU accounts for the IPv6
// underlay.
func TestMeshDualStack(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP and WireGuard devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v6loop := netip.IPv6Loopback()
	gossip := func(seeds ...string) GossipConfig {
		g := e2eGossip(seeds...)
		g.ListenAddr = netip.AddrPortFrom(v6loop, 0)
		return g
	}
	start := func(id uint64, g GossipConfig) *e2eNode {
		n := &e2eNode{id: id, recons: make(chan struct{}, 1)}
		cfg := e2eMeshConfig(id, n)
		cfg.ListenAddr, cfg.EndpointAddr = v6loop, v6loop
		cfg.OverlayIP6 = netip.MustParseAddr(fmt.Sprintf("fd00:64::%d", id))
		m, err := StartMesh(ctx, cfg, g)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		n.m = m
		startEcho(t, n)
		return n
	}
	n1 := start(1, gossip())
	n2 := start(2, gossip(n1.m.Pool().Server().Self().Addr.String()))
	waitPeers(ctx, t, n1, n2.m.PublicKey())
	waitPeers(ctx, t, n2, n1.m.PublicKey())
	for _, p := range n1.m.Peers() {
		want := []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("fd00:64::2/128")}
		if diff := cmp.Diff(want, p.AllowedIPs, cmpInfo); diff != "" || p.Endpoint.Addr() != v6loop {
			t.Errorf("node 1's peer %+v: AllowedIPs mismatch (-want +got):\n%s", p, diff)
		}
	}
	for _, ip := range n2.m.OverlayIPs() {
		exchangeVia(ctx, t, n1, n2, ip)
	}
	for _, ip := range n1.m.OverlayIPs() {
		exchangeVia(ctx, t, n2, n1, ip)
	}
	if c := n1.m.WGConfig(); c.MTU != DefaultMTU6 || len(c.Addresses) != 2 {
		t.Errorf("WGConfig() = MTU %d, addresses %v; want %d and both addresses", c.MTU, c.Addresses, DefaultMTU6)
	}
	if ln, err := n1.m.Listen("tcp6", "[::]:7100"); err != nil || ln.Addr().String() != "[fd00:64::1]:7100" {
		t.Errorf("Listen(tcp6, [::]:7100) = %v, %v; want the IPv6 overlay address", ln, err)
	} else {
		ln.Close()
	}
}

// TestMeshProbeUnanswered: a peer that does not answer probes (here it
// listens on another probe port) is reported as such, while its
// handshake and traffic are fine.
func TestMeshProbeUnanswered(t *testing.T) {
	if testing.Short() {
		t.Skip("real UDP and WireGuard devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func(id uint64, probePort int, g GossipConfig) *e2eNode {
		n := &e2eNode{id: id, recons: make(chan struct{}, 1)}
		cfg := e2eMeshConfig(id, n)
		cfg.ProbePort = probePort
		cfg.ProbeInterval = -1 // no periodic probes: the test probes
		m, err := StartMesh(ctx, cfg, g)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		n.m = m
		startEcho(t, n)
		return n
	}
	n1 := start(1, 0, e2eGossip())
	n2 := start(2, 7777, e2eGossip(n1.m.Pool().Server().Self().Addr.String()))
	waitPeers(ctx, t, n1, n2.m.PublicKey())
	waitPeers(ctx, t, n2, n1.m.PublicKey())
	exchange(ctx, t, n1, n2) // the tunnel works

	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	res := n1.m.ProbePeers(pctx)
	if len(res) != 1 || res[0].NodeID != 2 || !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("ProbePeers = %+v, want no answer from worker 2", res)
	}
	st := n1.m.Stats()
	if len(st.PeerStats) != 1 || st.PeerStats[0].ProbeAnswered || st.PeerStats[0].LastHandshake.IsZero() {
		t.Errorf("node 1's stats = %+v, want a handshake and no probe answer", st.PeerStats)
	}
}
