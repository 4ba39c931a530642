// Command benchplot reads the JSON lines printed by cmd/chitchat-bench (UDP
// and -sim modes) and by the memberlist baseline harness, and draws, against
// the number of nodes N:
//
//   - docs/bench-convergence.png: time until every node sees every node
//     live, and time until every survivor has marked a killed node dead;
//   - docs/bench-bytes.png: bytes sent per node per second in the steady
//     state, with upstream chitchat's published figures and test bounds.
//
// Each point is the median of the runs for one (system, profile, N) at loss
// 0; the bars span the smallest and largest run. With -table it prints
// instead the Markdown tables of BENCHMARKS.md (medians over the runs).
//
//	go run ./cmd/benchplot -out docs bench/results/*.jsonl
//	go run ./cmd/benchplot -table bench/results/*.jsonl
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// row is one JSON line; only the fields plotted or tabulated are decoded.
type row struct {
	System   string   `json:"system"`
	Mode     string   `json:"mode"`
	Lockstep bool     `json:"lockstep"` // -sim -lockstep
	Profile  string   `json:"profile"`
	N        int      `json:"n"`
	Loss     float64  `json:"loss"`
	Interval float64  `json:"interval_s"`
	Conv     *float64 `json:"convergence_s"`
	UDP      *float64 `json:"bytes_per_node_s_udp"`
	TCP      *float64 `json:"bytes_per_node_s_tcp"`
	TCPEst   *float64 `json:"bytes_per_node_s_tcp_pushpull_est"`
	Detect   *float64 `json:"detect_last_s"`
	// Table-only fields.
	Pkts      *float64 `json:"pkts_per_node_s"`
	CPU       *float64 `json:"cpu_s_per_node_s"`
	Heap      *float64 `json:"heap_bytes_per_node"`
	DetFirst  *float64 `json:"detect_first_s"`
	DetMedian *float64 `json:"detect_median_s"`
	FP        *float64 `json:"false_positives"`
	KnowAll   *float64 `json:"rounds_to_know_all"`
	KeyAll    *float64 `json:"rounds_key_everywhere"`
	Bound     *float64 `json:"pushpull_bound"`
	PerRound  *float64 `json:"bytes_per_node_per_round"`
	MsgsRound *float64 `json:"msgs_per_node_per_round"`
	Digest    *float64 `json:"digest_bytes"`
	CPURound  *float64 `json:"cpu_s_per_round"`
	// -sim lines.
	AllLive  *float64 `json:"rounds_to_all_live"`
	SimBytes *float64 `json:"bytes_per_node_s"`
}

// Upstream chitchat's bandwidth figures at N = 10, 20, 40, 100: measured
// steady state (issue #6) and the bounds its perf tests
// (tests/perf_test.rs) assert.
var (
	upstreamMeasured = plotter.XYs{{X: 10, Y: 10_000}, {X: 20, Y: 19_600}, {X: 40, Y: 38_900}, {X: 100, Y: 98_000}}
	upstreamBound    = plotter.XYs{{X: 10, Y: 15_000}, {X: 20, Y: 25_000}, {X: 40, Y: 50_000}, {X: 100, Y: 120_000}}
)

func main() {
	out := flag.String("out", "docs", "directory of the PNGs")
	table := flag.Bool("table", false, "print the Markdown tables of the medians instead of plotting")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchplot [-out dir | -table] results.jsonl...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var rows []row
	for _, name := range flag.Args() {
		rs, err := readRows(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchplot:", err)
			os.Exit(1)
		}
		rows = append(rows, rs...)
	}
	if *table {
		printTables(os.Stdout, rows)
		return
	}
	if err := plotConvergence(rows, filepath.Join(*out, "bench-convergence.png")); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
	if err := plotBytes(rows, filepath.Join(*out, "bench-bytes.png")); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

func readRows(name string) ([]row, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
			continue
		}
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// series collects the values of one curve by N.
type series struct {
	name string
	byN  map[int][]float64
}

// collect groups f(r) by label(r) and N over the loss-free rows for which
// label returns a name and f a value.
func collect(rows []row, label func(row) string, f func(row) (float64, bool)) []*series {
	m := map[string]*series{}
	for _, r := range rows {
		name := label(r)
		if name == "" || r.Loss != 0 {
			continue
		}
		v, ok := f(r)
		if !ok || v <= 0 {
			continue
		}
		s := m[name]
		if s == nil {
			s = &series{name: name, byN: map[int][]float64{}}
			m[name] = s
		}
		s.byN[r.N] = append(s.byN[r.N], v)
	}
	var out []*series
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// errPoints are medians with min-max error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

func (s *series) points() errPoints {
	var p errPoints
	for _, n := range slices.Sorted(maps.Keys(s.byN)) {
		vs := slices.Sorted(slices.Values(s.byN[n]))
		med := median(vs)
		p.XYs = append(p.XYs, plotter.XY{X: float64(n), Y: med})
		p.YErrors = append(p.YErrors, struct{ Low, High float64 }{med - vs[0], vs[len(vs)-1] - med})
	}
	return p
}

// median returns the median of sorted, which is not empty.
func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 0 {
		return (sorted[m-1] + sorted[m]) / 2
	}
	return sorted[m]
}

// udpLabel names the curves of the UDP harnesses' lines: system, profile,
// then suffix(r); -sim lines get no label.
func udpLabel(suffix func(row) string) func(row) string {
	return func(r row) string {
		if r.Mode == "sim" {
			return ""
		}
		return r.System + " " + r.Profile + suffix(r)
	}
}

// simLabel names the curve of the -sim lines without -lockstep.
func simLabel(suffix string) func(row) string {
	return func(r row) string {
		if r.Mode == "sim" && !r.Lockstep {
			return r.System + " sim" + suffix
		}
		return ""
	}
}

// fixed is a suffix that does not depend on the line.
func fixed(s string) func(row) string { return func(row) string { return s } }

// newPlot returns a log-log plot whose y axis reaches ymax, leaving room
// for the legend at the top left.
func newPlot(title, ylabel string, ymax float64) *plot.Plot {
	p := plot.New()
	p.Y.Max = ymax
	p.Title.Text = title
	p.X.Label.Text = "nodes (N)"
	p.Y.Label.Text = ylabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return p
}

// addSeries draws each series as a line with points and error bars, in
// style i onwards; dashed draws dashed lines.
func addSeries(p *plot.Plot, ss []*series, style int, dashed bool) (int, error) {
	for _, s := range ss {
		pts := s.points()
		line, scatter, err := plotter.NewLinePoints(pts.XYs)
		if err != nil {
			return style, err
		}
		c := plotutil.Color(style)
		line.Color, scatter.Color = c, c
		scatter.Shape = plotutil.Shape(style)
		if dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return style, err
		}
		bars.Color = c
		p.Add(line, scatter, bars)
		p.Legend.Add(s.name, line, scatter)
		style++
	}
	return style, nil
}

func plotConvergence(rows []row, file string) error {
	p := newPlot("Convergence and failure detection (127.0.0.1, 300 ms)", "seconds", 1000)
	conv := collect(rows, udpLabel(fixed(": all see all live")), func(r row) (float64, bool) { return deref(r.Conv) })
	style, err := addSeries(p, conv, 0, false)
	if err != nil {
		return err
	}
	sim := collect(rows, simLabel(" (virtual time): all see all live"), func(r row) (float64, bool) {
		v, ok := deref(r.AllLive)
		return v * r.Interval, ok
	})
	if style, err = addSeries(p, sim, style, true); err != nil {
		return err
	}
	det := collect(rows, udpLabel(fixed(": kill seen by all")), func(r row) (float64, bool) { return deref(r.Detect) })
	if _, err = addSeries(p, det, style, true); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 6*vg.Inch, file)
}

func plotBytes(rows []row, file string) error {
	p := newPlot("Steady-state traffic sent per node (payload bytes)", "bytes / node / s", 2e7)
	udp := collect(rows, udpLabel(func(r row) string {
		if r.System == "memberlist" {
			return " (UDP + TCP push/pull est.)"
		}
		return " (UDP)"
	}), func(r row) (float64, bool) {
		v, ok := deref(r.UDP)
		if est, ok2 := deref(r.TCPEst); ok2 {
			v += est
		}
		return v, ok
	})
	style, err := addSeries(p, udp, 0, false)
	if err != nil {
		return err
	}
	sim := collect(rows, simLabel(" (exact sizes)"), func(r row) (float64, bool) { return deref(r.SimBytes) })
	if _, err = addSeries(p, sim, style, true); err != nil {
		return err
	}
	for _, u := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{
		{"upstream chitchat, measured", upstreamMeasured, color.Gray{Y: 0x40}},
		{"upstream chitchat, perf-test bound", upstreamBound, color.Gray{Y: 0x90}},
	} {
		line, scatter, err := plotter.NewLinePoints(u.xys)
		if err != nil {
			return err
		}
		line.Color, scatter.Color = u.c, u.c
		line.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		scatter.Shape = draw.CrossGlyph{}
		p.Add(line, scatter)
		p.Legend.Add(u.name, line, scatter)
	}
	return p.Save(8*vg.Inch, 6*vg.Inch, file)
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// printTables writes the UDP table (one line per system, profile, N and
// loss) and the -sim table (one line per N), each cell the median of the
// runs, as Markdown.
func printTables(w io.Writer, rows []row) {
	type key struct {
		system, profile string
		n               int
		loss            float64
	}
	groups := map[key][]row{}
	var keys []key
	for _, r := range rows {
		k := key{r.System, r.Profile, r.N, r.Loss}
		if r.Mode == "sim" {
			k.profile = "sim"
			if r.Lockstep {
				k.profile = "sim lockstep"
			}
		}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.loss, b.loss); c != 0 {
			return c
		}
		if c := cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		if c := strings.Compare(a.system, b.system); c != 0 {
			return -c // chitchat-go before memberlist
		}
		return strings.Compare(a.profile, b.profile)
	})
	values := func(rs []row, f func(row) *float64) []float64 {
		var vs []float64
		for _, r := range rs {
			if p := f(r); p != nil {
				vs = append(vs, *p)
			}
		}
		slices.Sort(vs)
		return vs
	}
	// med is the median of the runs that have the figure (null if none).
	med := func(rs []row, f func(row) *float64, digits int) string {
		vs := values(rs, f)
		if len(vs) == 0 {
			return "null"
		}
		return strconv.FormatFloat(median(vs), 'f', digits, 64)
	}
	// spread is the median and, with more than one run, the range.
	spread := func(rs []row, f func(row) *float64, digits int) string {
		vs := values(rs, f)
		if len(vs) < 2 {
			return med(rs, f, digits)
		}
		return fmt.Sprintf("%s (%s–%s)", med(rs, f, digits),
			strconv.FormatFloat(vs[0], 'f', digits, 64), strconv.FormatFloat(vs[len(vs)-1], 'f', digits, 64))
	}
	// each lists the figure of every run, in run order.
	each := func(rs []row, f func(row) *float64) string {
		var out []string
		for _, r := range rs {
			if p := f(r); p != nil {
				out = append(out, strconv.FormatFloat(*p, 'f', -1, 64))
			} else {
				out = append(out, "null")
			}
		}
		return strings.Join(out, ", ")
	}
	runs := func(rs []row) string {
		failed := 0
		for _, r := range rs {
			if r.Conv == nil {
				failed++
			}
		}
		if failed > 0 {
			return fmt.Sprintf("%d (%d timed out)", len(rs), failed)
		}
		return strconv.Itoa(len(rs))
	}
	kib := func(r row) *float64 {
		if r.Heap == nil {
			return nil
		}
		v := *r.Heap / 1024
		return &v
	}
	fmt.Fprintln(w, "| n | system | profile | loss | runs | conv s (range) | UDP B/node/s | TCP B/node/s (push/pull est.) | pkts/node/s | CPU s/node/s | heap KiB/node | detect first / median / last s | FP per run |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		rs := groups[k]
		if strings.HasPrefix(k.profile, "sim") {
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %g | %s | %s | %s | %s (%s) | %s | %s | %s | %s / %s / %s | %s |\n",
			k.n, k.system, k.profile, k.loss, runs(rs),
			spread(rs, func(r row) *float64 { return r.Conv }, 2),
			med(rs, func(r row) *float64 { return r.UDP }, 0),
			med(rs, func(r row) *float64 { return r.TCP }, 0),
			med(rs, func(r row) *float64 { return r.TCPEst }, 0),
			med(rs, func(r row) *float64 { return r.Pkts }, 2),
			med(rs, func(r row) *float64 { return r.CPU }, 4),
			med(rs, kib, 0),
			med(rs, func(r row) *float64 { return r.DetFirst }, 2),
			med(rs, func(r row) *float64 { return r.DetMedian }, 2),
			med(rs, func(r row) *float64 { return r.Detect }, 2),
			each(rs, func(r row) *float64 { return r.FP }))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| n | rounds | runs | rounds: know all | rounds: all live | rounds: key everywhere | log3(N) + ln ln N | B/node/round | B/node/s | msgs/node/round | heap KiB/node | digest B | sim CPU s/round |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		rs := groups[k]
		if !strings.HasPrefix(k.profile, "sim") {
			continue
		}
		mode := "async"
		if k.profile == "sim lockstep" {
			mode = "lockstep"
		}
		fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			k.n, mode, len(rs),
			spread(rs, func(r row) *float64 { return r.KnowAll }, 1),
			spread(rs, func(r row) *float64 { return r.AllLive }, 1),
			spread(rs, func(r row) *float64 { return r.KeyAll }, 1),
			med(rs, func(r row) *float64 { return r.Bound }, 2),
			med(rs, func(r row) *float64 { return r.PerRound }, 0),
			med(rs, func(r row) *float64 { return r.SimBytes }, 0),
			med(rs, func(r row) *float64 { return r.MsgsRound }, 2),
			med(rs, kib, 0),
			med(rs, func(r row) *float64 { return r.Digest }, 0),
			med(rs, func(r row) *float64 { return r.CPURound }, 2))
	}
}
