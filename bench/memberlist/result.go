package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// result is the JSON line. Its fields, their names and their order are those
// cmd/chitchat-bench prints (README.md defines each one): cmd/benchplot reads
// both harnesses' lines with one decoder. A pointer field is null when its
// phase did not complete (a wait timed out); the reason is in Errors.
//
// "Per node per second" means summed over all nodes, divided by N and by the
// measured window's length.
type result struct {
	System            string   `json:"system"`  // "memberlist"
	Version           string   `json:"version"` // memberlist's module version
	Profile           string   `json:"profile"` // lan or fast
	N                 int      `json:"n"`
	Loss              float64  `json:"loss"`
	ConvergenceS      *float64 `json:"convergence_s"`        // from the first start until every node counts N members
	BytesPerNodeSUDP  *float64 `json:"bytes_per_node_s_udp"` // UDP payload bytes handed to the socket
	BytesPerNodeSTCP  *float64 `json:"bytes_per_node_s_tcp"` // TCP payload bytes written, dialled and accepted connections
	PktsPerNodeS      *float64 `json:"pkts_per_node_s"`      // UDP datagrams + TCP writes
	CPUSPerNodeS      *float64 `json:"cpu_s_per_node_s"`     // process CPU time (user+system) in the window
	HeapBytesPerNode  *float64 `json:"heap_bytes_per_node"`  // HeapInuse after runtime.GC(), / N
	DetectMedianS     *float64 `json:"detect_median_s"`      // median survivor's delay to mark the victim dead
	DetectLastS       *float64 `json:"detect_last_s"`        // the last survivor's
	FalsePositives    *int     `json:"false_positives"`      // distinct nodes marked dead during the steady window
	PktsPerNodeSUDP   *float64 `json:"pkts_per_node_s_udp"`
	PktsPerNodeSTCP   *float64 `json:"pkts_per_node_s_tcp"`
	TCPConnsPerNodeS  *float64 `json:"tcp_conns_per_node_s"`
	DroppedPerNodeS   *float64 `json:"udp_dropped_per_node_s"` // dropped on purpose by -loss
	FalsePosMarks     *int     `json:"false_positive_marks"`   // (observer, subject) dead marks behind FalsePositives
	SuspectMarks      *int     `json:"suspect_marks"`          // moves to suspect during the window
	DetectFirstS      *float64 `json:"detect_first_s"`
	DetectSeen        *int     `json:"detect_seen"`            // survivors that marked the victim dead in time
	FalsePosDetect    *int     `json:"false_positives_detect"` // distinct nodes other than the victim marked dead while detecting
	StartupS          float64  `json:"startup_s"`              // until the last Join returned
	JoinErrors        int      `json:"join_errors"`
	GoroutinesPerNode *float64 `json:"goroutines_per_node"`
	PushPullBytes     *float64 `json:"pushpull_bytes"`                    // TCP bytes of one push/pull exchange, both ways
	PushPullEstTCP    *float64 `json:"bytes_per_node_s_tcp_pushpull_est"` // pushpull_bytes / the scaled PushPullInterval
	WarmupS           float64  `json:"warmup_s"`
	SteadyS           float64  `json:"steady_s"`
	TimeoutS          float64  `json:"timeout_s"`
	GOMAXPROCS        int      `json:"gomaxprocs"`
	GoVersion         string   `json:"go_version"`
	Errors            []string `json:"errors"`
	// As cmd/chitchat-bench: the seed of the loss draws.
	Seed uint64 `json:"seed"`
}

func writeJSON(w io.Writer, v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// num returns x rounded to digits decimals.
func num(x float64, digits int) *float64 {
	p := math.Pow(10, float64(digits))
	v := math.Round(x*p) / p
	return &v
}

func intp(x int) *int { return &x }

// median returns the median of sorted values, which must not be empty.
func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[m]
	}
	return (sorted[m-1] + sorted[m]) / 2
}
