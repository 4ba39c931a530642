//go:build linux

package main

// The overlay on real interfaces: three demo nodes, each alone in a network
// namespace with --overlay --overlay_tun chitchat0, wired by veth pairs to
// a bridge in a hub namespace (as in netns_test.go, on 10.214.0.0/24):
//
//	hub: br0 ─┬─ v0 ══ eth0 10.214.0.1 (ns n0)   chitchat0 10.200.0.1 fd00:200::1
//	          ├─ v1 ══ eth0 10.214.0.2 (ns n1)   chitchat0 10.200.0.2 fd00:200::2
//	          └─ v2 ══ eth0 10.214.0.3 (ns n2)   chitchat0 10.200.0.3 fd00:200::3
//
// The overlay is dual-stack. From n0, ping (both families) and an HTTP GET
// reach the others by overlay IP, while a
// packet capture on the hub shows the underlay carrying that traffic only
// as UDP between WireGuard ports. Then n2 is killed (its peer and route
// leave the others, and traffic to it stops), restarted with a new key
// (reachable again, the others untouched), and everything is stopped
// (nothing left behind).
//
// Waiting on real processes in namespaces is the one place where this
// package polls a condition, against a deadline; only outcomes are
// asserted, never durations. Needs root, /dev/net/tun, iproute2 and ping;
// skipped otherwise.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	tunName    = "chitchat0"
	wgPort     = 51820
	gossipPort = 7000
)

func ovlNodeIP(i int) string     { return "10.214.0." + strconv.Itoa(i+1) }
func ovlOverlayIP(i int) string  { return "10.200.0." + strconv.Itoa(i+1) }
func ovlOverlayIP6(i int) string { return "fd00:200::" + strconv.Itoa(i+1) }

func TestOverlayTUNAcrossNamespaces(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and TUN interfaces (CI runs as root)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun for TUN interfaces: %v", err)
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: apt-get install iproute2 iputils-ping; .ci/run installs them)", tool)
		}
	}
	removeStaleNamespaces(t)
	ctx := testContext(t)

	const n = 3
	tag := fmt.Sprintf("%s%d-%04x", netnsPrefix, os.Getpid(), rand.IntN(1<<16))
	hub := tag + "-ohub"
	if out, err := ipCmd("netns", "add", hub); err != nil {
		t.Skipf("ip netns is unavailable here: %v: %s", err, out)
	}
	t.Cleanup(func() { deleteNamespace(t, hub) })
	if out, err := ipCmd("-n", hub, "link", "add", "br0", "type", "bridge"); err != nil {
		t.Skipf("cannot create a bridge (no bridge support in this kernel?): %v: %s", err, out)
	}
	mustIP(t, "-n", hub, "link", "set", "br0", "up")
	names := make([]string, n)
	for i := range n {
		ns := fmt.Sprintf("%s-o%d", tag, i)
		names[i] = ns
		mustIP(t, "netns", "add", ns)
		t.Cleanup(func() { deleteNamespace(t, ns) })
		veth := "v" + strconv.Itoa(i)
		mustIP(t, "-n", hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		mustIP(t, "-n", hub, "link", "set", veth, "master", "br0", "up")
		mustIP(t, "-n", ns, "addr", "add", ovlNodeIP(i)+"/24", "dev", "eth0")
		mustIP(t, "-n", ns, "link", "set", "eth0", "up")
		mustIP(t, "-n", ns, "link", "set", "lo", "up")
	}

	nodes := make([]*proc, n)
	clients := make([]*http.Client, n)
	start := func(i int) *proc {
		// HTTP and gossip on every address (so the overlay address serves
		// HTTP too), announced on eth0's; WireGuard on every address.
		args := []string{"netns", "exec", names[i], demoBin,
			"--listen_addr", "0.0.0.0:" + strconv.Itoa(gossipPort), "--public_addr", ovlNodeIP(i) + ":" + strconv.Itoa(gossipPort),
			"--seed", ovlNodeIP(0) + ":" + strconv.Itoa(gossipPort), "--node_id", nodeName(i),
			"--interval_ms", "100", "--initial_interval", "500ms",
			"--overlay", "--overlay_node_id", strconv.Itoa(i + 1), "--overlay_ip", ovlOverlayIP(i) + "," + ovlOverlayIP6(i),
			"--overlay_tun", tunName, "--wg_listen_port", strconv.Itoa(wgPort)}
		p := startCommand(t, nodeName(i), exec.Command("ip", args...))
		waitServing(ctx, p)
		p.url = "http://" + ovlNodeIP(i) + ":" + strconv.Itoa(gossipPort)
		return p
	}
	for i := range n {
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: netnsDialer(names[i])}}
		t.Cleanup(clients[i].CloseIdleConnections)
		nodes[i] = start(i)
	}

	// Every node has the two others configured.
	keys := make([]map[uint64]string, n)
	for i := range n {
		keys[i] = waitOverlay(ctx, t, clients[i], nodes[i].url, fmt.Sprintf("%s has both peers configured", nodeName(i)),
			func(peers map[uint64]overlayPeerDoc) bool { return len(peers) == 2 && allConfigured(peers) })
	}

	// Overlay traffic from n0, watched on the underlay.
	phase := time.Now()
	capture := startCapture(t, hub)
	for _, i := range []int{1, 2} {
		waitPing(ctx, t, names[0], ovlOverlayIP(i), true)
		waitPing(ctx, t, names[0], ovlOverlayIP6(i), true)
		overlayGet(ctx, t, clients[0], ovlOverlayIP(i), nodeName(i))
	}
	st := capture.stop()
	t.Logf("pings and GETs through the overlay took %v", time.Since(phase).Round(time.Millisecond))
	t.Logf("underlay during the overlay traffic: %d WireGuard datagrams, %d gossip datagrams, %d ARP frames",
		st.wireguard, st.gossip, st.arp)
	if st.wireguard == 0 {
		t.Error("no WireGuard datagram on the underlay while n0 pinged and fetched through the overlay")
	}
	for _, v := range st.violations {
		t.Errorf("the underlay carried %s", v)
	}

	// n2 dies: n0 and n1 drop its peer and route, and traffic to it stops.
	oldKey := keys[0][3]
	phase = time.Now()
	nodes[2].cmd.Process.Kill()
	nodes[2].wait(ctx)
	for _, i := range []int{0, 1} {
		waitOverlay(ctx, t, clients[i], nodes[i].url, nodeName(i)+" dropped n2",
			func(peers map[uint64]overlayPeerDoc) bool { _, ok := peers[3]; return !ok && allConfigured(peers) })
		waitNoRoute(ctx, t, names[i], ovlOverlayIP(2))
	}
	waitPing(ctx, t, names[0], ovlOverlayIP(2), false)
	t.Logf("n2's peer and route gone from n0 and n1 %v after the kill", time.Since(phase).Round(time.Millisecond))

	// n2 comes back with a new key (an ephemeral one): reachable again,
	// the others untouched.
	phase = time.Now()
	nodes[2] = start(2)
	for _, i := range []int{0, 1} {
		keys[i] = waitOverlay(ctx, t, clients[i], nodes[i].url, nodeName(i)+" has n2's new key",
			func(peers map[uint64]overlayPeerDoc) bool {
				p, ok := peers[3]
				return ok && p.Key != oldKey && allConfigured(peers) && len(peers) == 2
			})
	}
	waitPing(ctx, t, names[0], ovlOverlayIP(2), true)
	overlayGet(ctx, t, clients[0], ovlOverlayIP(2), nodeName(2))
	t.Logf("restarted n2 reachable %v after its start", time.Since(phase).Round(time.Millisecond))

	// Shutdown leaves no interface, address or route.
	for i := range n {
		nodes[i].stop(ctx, unix.SIGTERM)
	}
	for i := range n {
		out, err := ipCmd("-n", names[i], "link", "show", tunName)
		if err == nil {
			t.Errorf("%s: %s still exists after shutdown:\n%s", names[i], tunName, out)
		}
		for _, what := range [][]string{{"-4", "addr"}, {"-6", "addr"}, {"-4", "route"}, {"-6", "route"}} {
			out, err := ipCmd(append([]string{"-n", names[i]}, what...)...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "10.200.0.") || strings.Contains(string(out), "fd00:200::") || strings.Contains(string(out), tunName) {
				t.Errorf("%s: ip %v after shutdown still shows the overlay:\n%s", names[i], what, out)
			}
		}
	}
}

// overlayPeerDoc is the part of an /overlay/peers entry the test reads.
type overlayPeerDoc struct {
	NodeID uint64 `json:"node_id"`
	Key    string `json:"wg_pubkey"`
	Health struct {
		Configured bool `json:"configured"`
	} `json:"health"`
}

func allConfigured(peers map[uint64]overlayPeerDoc) bool {
	for _, p := range peers {
		if !p.Health.Configured {
			return false
		}
	}
	return true
}

// waitOverlay polls base's /overlay/peers until ok holds, and returns each
// peer's key by worker id.
func waitOverlay(ctx context.Context, t *testing.T, client *http.Client, base, what string, ok func(map[uint64]overlayPeerDoc) bool) map[uint64]string {
	t.Helper()
	var last string
	for {
		code, _, b, err := fetch(ctx, client, base+"/overlay/peers")
		if err == nil && code == http.StatusOK {
			var docs []overlayPeerDoc
			if json.Unmarshal(b, &docs) == nil {
				peers := make(map[uint64]overlayPeerDoc)
				keys := make(map[uint64]string)
				for _, d := range docs {
					peers[d.NodeID], keys[d.NodeID] = d, d.Key
				}
				if ok(peers) {
					return keys
				}
			}
			last = string(b)
		} else {
			last = fmt.Sprint(code, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			t.Fatalf("waiting until %s: %v; last /overlay/peers: %s", what, ctx.Err(), last)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// waitPing pings ip from ns until the outcome is want (a reply or none).
// The first pings may go before the WireGuard handshake completes.
func waitPing(ctx context.Context, t *testing.T, ns, ip string, want bool) {
	t.Helper()
	var out []byte
	for {
		var err error
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "1", ip).CombinedOutput()
		if (err == nil) == want {
			return
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			t.Fatalf("ping %s from %s: want reply %v: %v; last output:\n%s", ip, ns, want, ctx.Err(), out)
		}
	}
}

// overlayGet fetches GET / from the node at overlay address ip, from the
// client's namespace, and checks it is that node.
func overlayGet(ctx context.Context, t *testing.T, client *http.Client, ip, name string) {
	t.Helper()
	url := "http://" + ip + ":" + strconv.Itoa(gossipPort) + "/"
	code, _, b, err := fetch(ctx, client, url)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s through the overlay: %d %v %.200s", url, code, err, b)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.ClusterState.NodeStates == nil {
		t.Fatalf("GET %s: not a cluster state: %v", url, err)
	}
	if !strings.Contains(string(b), `"`+name+`"`) {
		t.Errorf("GET %s does not come from %s", url, name)
	}
}

// waitNoRoute waits until ns has no route to ip.
func waitNoRoute(ctx context.Context, t *testing.T, ns, ip string) {
	t.Helper()
	var out []byte
	for {
		var err error
		out, err = ipCmd("-n", ns, "route", "show", "dev", tunName)
		if err == nil && !strings.Contains(string(out), ip+" ") {
			return
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			t.Fatalf("%s still routes %s: %s", ns, ip, out)
		}
	}
}

// underlayStats classifies the frames seen on the hub's interfaces.
type underlayStats struct {
	wireguard, gossip, arp int
	violations             []string
}

type capture struct {
	f    *os.File
	mu   sync.Mutex
	st   underlayStats
	done chan struct{}
}

// startCapture reads every frame of every interface of the hub namespace
// (each bridged frame is seen on its way in and out) until stop.
func startCapture(t *testing.T, hub string) *capture {
	t.Helper()
	var fd int
	err := inNetns(filepath.Join("/run/netns", hub), func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", hub, err)
	}
	c := &capture{f: os.NewFile(uintptr(fd), "capture"), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 65536)
		for {
			n, err := c.f.Read(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.st.classify(buf[:n])
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *capture) stop() underlayStats {
	c.f.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

var overlayNet = netip.MustParsePrefix("10.200.0.0/24")

// classify counts a frame as WireGuard, gossip (UDP, or TCP stream
// exchanges, on the gossip port) or ARP, or records why it should not be
// on the underlay: anything else over IPv4 (ICMP, other TCP, other UDP
// ports) and any packet to or from an overlay address. IPv6 frames
// must be link-local housekeeping (neighbour discovery, MLD).
func (s *underlayStats) classify(f []byte) {
	if len(f) < 14 {
		return
	}
	bad := func(format string, args ...any) {
		if len(s.violations) < 10 {
			s.violations = append(s.violations, fmt.Sprintf(format, args...))
		}
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0806:
		s.arp++
	case 0x0800:
		ip := f[14:]
		if len(ip) < 20 {
			return
		}
		src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		if overlayNet.Contains(src) || overlayNet.Contains(dst) {
			bad("an overlay address in the clear: %v → %v, protocol %d", src, dst, ip[9])
			return
		}
		l4 := ip[int(ip[0]&0x0f)*4:]
		if ip[9] == unix.IPPROTO_TCP && len(l4) >= 4 {
			// Gossip's stream exchanges: TCP on the gossip port (a node
			// whose digest shows a lagging view starts one at once).
			if sport, dport := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4]); sport == gossipPort || dport == gossipPort {
				s.gossip++
				return
			}
		}
		if ip[9] != unix.IPPROTO_UDP || len(l4) < 4 {
			bad("%v → %v, IP protocol %d (not UDP)", src, dst, ip[9])
			return
		}
		sport, dport := binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		switch {
		case sport == wgPort && dport == wgPort:
			s.wireguard++
		case sport == gossipPort || dport == gossipPort:
			s.gossip++
		default:
			bad("UDP %v:%d → %v:%d (neither WireGuard nor gossip)", src, sport, dst, dport)
		}
	case 0x86dd:
		ip := f[14:]
		if len(ip) < 40 {
			return
		}
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		if !src.IsLinkLocalUnicast() && !src.IsUnspecified() && !dst.IsMulticast() {
			bad("IPv6 %v → %v, next header %d", src, dst, ip[6])
		}
	}
}

// inNetns runs f on an OS thread switched into the network namespace at
// path (sockets it creates stay there), then switches back.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		err = f()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		errc <- err
	}()
	return errors.Join(<-errc)
}
