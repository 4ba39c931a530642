package failuredetector

import (
	"testing"
	"time"
)

// benchNodes is the cluster size of issue 13.
const benchNodes = 10_000

// steadyDetector returns a detector whose benchNodes windows are full and
// past their first ring period (the steady state), every node reporting
// every 300 ms, and the time of the last round.
func steadyDetector(tb testing.TB) (*Detector[uint64], time.Time) {
	tb.Helper()
	d := newDetector[uint64](tb, DefaultConfig())
	now := t0
	for range 1100 { // window 1,000 + one block period of 40
		now = now.Add(300 * time.Millisecond)
		for id := range uint64(benchNodes) {
			d.ReportHeartbeat(id, now)
		}
	}
	return d, now
}

// BenchmarkReportHeartbeat10k: one op is one report, nodes in turn.
func BenchmarkReportHeartbeat10k(b *testing.B) {
	d, now := steadyDetector(b)
	var id uint64
	b.ReportAllocs()
	for b.Loop() {
		if id == benchNodes {
			id = 0
			now = now.Add(300 * time.Millisecond)
		}
		d.ReportHeartbeat(id, now)
		id++
	}
}

// BenchmarkPhi10k: one op is one Phi, nodes in turn.
func BenchmarkPhi10k(b *testing.B) {
	d, now := steadyDetector(b)
	now = now.Add(time.Second)
	var id uint64
	b.ReportAllocs()
	for b.Loop() {
		if id == benchNodes {
			id = 0
		}
		d.Phi(id, now)
		id++
	}
}

// BenchmarkUpdateLiveness10k: one op is a liveness round over all nodes,
// half of them live and half dead.
func BenchmarkUpdateLiveness10k(b *testing.B) {
	d, now := steadyDetector(b)
	for id := range uint64(benchNodes / 2) {
		d.ReportHeartbeat(id, now.Add(10*time.Second))
	}
	now = now.Add(10 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		for id := range uint64(benchNodes) {
			d.UpdateLiveness(id, now)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchNodes, "ns/node")
}

// BenchmarkGarbageCollect10k: one op is a GarbageCollect scan of all nodes
// that collects none (half are dead, within the grace period).
func BenchmarkGarbageCollect10k(b *testing.B) {
	d, now := steadyDetector(b)
	for id := range uint64(benchNodes / 2) {
		d.MarkDead(id, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := d.GarbageCollect(now); got != nil {
			b.Fatalf("collected %d nodes", len(got))
		}
	}
}

// BenchmarkWindowReportHeartbeat: one op is one report to an embedded
// Window in a slice of benchNodes, without the Detector's map.
func BenchmarkWindowReportHeartbeat(b *testing.B) {
	m := newModel(DefaultConfig())
	ws := make([]Window, benchNodes)
	now := t0
	for range 1100 {
		now = now.Add(300 * time.Millisecond)
		for i := range ws {
			ws[i].ReportHeartbeat(&m, now)
		}
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == benchNodes {
			i = 0
			now = now.Add(300 * time.Millisecond)
		}
		ws[i].ReportHeartbeat(&m, now)
		i++
	}
}

// TestDetectorReportDoesNotAllocate: at steady state, reporting a
// heartbeat, asking phi and judging a known node allocate nothing.
func TestDetectorReportDoesNotAllocate(t *testing.T) {
	cfg := DefaultConfig()
	d := newDetector[uint64](t, cfg)
	now := t0
	for range 1100 {
		now = now.Add(300 * time.Millisecond)
		for id := range uint64(100) {
			d.ReportHeartbeat(id, now)
		}
	}
	var id uint64
	allocs := testing.AllocsPerRun(10_000, func() {
		id = (id + 1) % 100
		if id == 0 {
			now = now.Add(300 * time.Millisecond)
		}
		d.ReportHeartbeat(id, now)
		d.Phi(id, now)
		d.UpdateLiveness(id, now)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per report, phi and verdict; want 0", allocs)
	}
}
