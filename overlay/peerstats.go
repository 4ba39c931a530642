package overlay

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PeerStat is what a device reports about one peer, with the worker it
// belongs to.
type PeerStat struct {
	// NodeID and OverlayIP are the worker's, from the pool's view (zero if
	// the device has a peer the view no longer lists).
	NodeID    uint64
	OverlayIP netip.Addr
	// PublicKey identifies the peer on the device.
	PublicKey Key
	// Endpoint is where the device last sent to or heard from the peer.
	Endpoint netip.AddrPort
	// LastHandshake is the time of the last completed handshake; zero if
	// none.
	LastHandshake time.Time
	// RxBytes and TxBytes count the bytes received from and sent to the
	// peer through the tunnel (WireGuard packets, overhead included).
	RxBytes, TxBytes uint64
	// ProbeAnswered says whether the peer answered a health probe through
	// the tunnel since the probe round before the last (see probe.go);
	// LastProbeReply is the time of its last answer (zero if none) and
	// ProbeRTT that answer's round trip.
	ProbeAnswered  bool
	LastProbeReply time.Time
	ProbeRTT       time.Duration
}

// ParsePeerStats reads the per-peer statistics of a UAPI "get" output
// (Device.IpcGet): public key, endpoint, last handshake time, bytes
// received and sent, in the device's order. Other lines are ignored.
func ParsePeerStats(s string) ([]PeerStat, error) {
	var (
		stats          []PeerStat
		sec, nsec      int64
		cur            *PeerStat
		flushHandshake = func() {
			if cur != nil && (sec != 0 || nsec != 0) {
				cur.LastHandshake = time.Unix(sec, nsec)
			}
			sec, nsec = 0, 0
		}
	)
	sc := bufio.NewScanner(strings.NewReader(s))
	for line := 1; sc.Scan(); line++ {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if key == "public_key" {
			flushHandshake()
			k, err := ParseHexKey(value)
			if err != nil {
				return nil, fmt.Errorf("overlay: UAPI line %d: public_key: %w", line, err)
			}
			stats = append(stats, PeerStat{PublicKey: k})
			cur = &stats[len(stats)-1]
			continue
		}
		if cur == nil {
			continue
		}
		var err error
		switch key {
		case "endpoint":
			cur.Endpoint, err = netip.ParseAddrPort(value)
		case "last_handshake_time_sec":
			sec, err = strconv.ParseInt(value, 10, 64)
		case "last_handshake_time_nsec":
			nsec, err = strconv.ParseInt(value, 10, 64)
		case "rx_bytes":
			cur.RxBytes, err = strconv.ParseUint(value, 10, 64)
		case "tx_bytes":
			cur.TxBytes, err = strconv.ParseUint(value, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("overlay: UAPI line %d: %s: %w", line, key, err)
		}
	}
	flushHandshake()
	return stats, sc.Err()
}
