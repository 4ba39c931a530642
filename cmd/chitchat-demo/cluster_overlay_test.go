package main

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Overlay flags after "--" are node_0's: node i gets the id, the overlay
// IP and the WireGuard port plus i, whatever the form of the flags.
func TestClusterOverlayArgs(t *testing.T) {
	tests := []struct {
		name    string
		overlay []string
		want    [][]string // each node's overlay flags
	}{
		{"separate values", []string{"--overlay", "--overlay_node_id", "7", "--overlay_ip", "10.200.0.254", "--wg_listen_port", "30000"},
			[][]string{
				{"--overlay_node_id", "7", "--overlay_ip", "10.200.0.254", "--wg_listen_port", "30000"},
				{"--overlay_node_id", "8", "--overlay_ip", "10.200.0.255", "--wg_listen_port", "30001"},
				{"--overlay_node_id", "9", "--overlay_ip", "10.200.1.0", "--wg_listen_port", "30002"},
			}},
		{"= forms, default WireGuard port", []string{"-overlay", "-overlay_node_id=1", "--overlay_ip=fd00::1"},
			[][]string{
				{"--overlay_node_id", "1", "--overlay_ip", "fd00::1", "--wg_listen_port", "51820"},
				{"--overlay_node_id", "2", "--overlay_ip", "fd00::2", "--wg_listen_port", "51821"},
				{"--overlay_node_id", "3", "--overlay_ip", "fd00::3", "--wg_listen_port", "51822"},
			}},
		{"free ports stay free", []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1", "--wg_listen_port", "0"},
			[][]string{
				{"--overlay_node_id", "1", "--overlay_ip", "10.200.0.1", "--wg_listen_port", "0"},
				{"--overlay_node_id", "2", "--overlay_ip", "10.200.0.2", "--wg_listen_port", "0"},
				{"--overlay_node_id", "3", "--overlay_ip", "10.200.0.3", "--wg_listen_port", "0"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-n", "3", "--base_port", "20000", "--dns_base_port", "0", "--", "--log_level", "debug"}, tt.overlay...)
			o, err := parseClusterFlags(args)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				common := []string{"--listen_addr", "127.0.0.1:" + strconv.Itoa(20000+i), "--node_id", "node_" + strconv.Itoa(i), "--interval_ms", "500"}
				if i > 0 {
					common = append(common, "--seed", "127.0.0.1:20000")
				}
				want := append(append(common, "--log_level", "debug", tt.overlay[0]), w...)
				if diff := cmp.Diff(want, o.nodeArgs(i)); diff != "" {
					t.Errorf("node %d args mismatch (-want +got):\n%s", i, diff)
				}
				if _, err := parseNodeFlags(o.nodeArgs(i)); err != nil {
					t.Errorf("node %d's command line is refused: %v", i, err)
				}
			}
		})
	}
}

// What cannot be derived for every node is refused up front.
func TestClusterOverlayProblems(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"id past the largest", []string{"-n", "3", "--", "--overlay", "--overlay_node_id", "18446744073709551614", "--overlay_ip", "10.200.0.1"},
			"--overlay_node_id 18446744073709551614: node 2 would get"},
		// Past the last IPv4 address; the broadcast address itself is
		// refused by the overlay's address rules first.
		{"IP past the last", []string{"-n", "2", "--", "--overlay", "--overlay_node_id", "1", "--overlay_ip", "255.255.255.255"},
			"255.255.255.255"},
		{"WireGuard port past 65535", []string{"-n", "3", "--", "--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1", "--wg_listen_port", "65534"},
			"node 2 would get port 65536"},
		{"WireGuard ports overlap the gossip ports", []string{"-n", "3", "--base_port", "51819", "--", "--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1"},
			"the WireGuard ports 51820..51822 overlap the gossip ports 51819..51821"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseClusterFlags(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// The WireGuard ports are part of the port check.
func TestClusterPortCheckCoversWireGuard(t *testing.T) {
	base := freePorts(t, 6)
	o, err := parseClusterFlags([]string{"-n", "3", "--base_port", strconv.Itoa(base), "--",
		"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1", "--wg_listen_port", strconv.Itoa(base + 3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.checkPorts(); err != nil {
		t.Fatalf("free ports reported taken: %v", err)
	}
	taken, err := net.ListenPacket("udp", addr(base+4))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = o.checkPorts()
	if want := addr(base+4) + "/UDP (node_1's WireGuard port) is not available"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("checkPorts = %v, want %q", err, want)
	}
}
