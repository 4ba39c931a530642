package main

import (
	"runtime"
	"runtime/debug"
)

// goMetrics writes the Go runtime's metrics, under the names the Prometheus
// client's Go collector gives them (the ones dashboards use most).
func goMetrics(m *metricsText) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	threads, _ := runtime.ThreadCreateProfile(nil)
	m.metric("go_goroutines", gaugeKind, "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	m.metric("go_threads", gaugeKind, "Number of OS threads created.", float64(threads))
	m.family("go_info", gaugeKind, "Information about the Go environment.")
	m.sample("go_info", 1, "version", runtime.Version())
	m.metric("go_sched_gomaxprocs_threads", gaugeKind, "The current runtime.GOMAXPROCS setting.", float64(runtime.GOMAXPROCS(0)))
	m.metric("go_gc_gogc_percent", gaugeKind, "Heap size target percentage (GOGC).", float64(gcPercent()))
	m.metric("go_gc_gomemlimit_bytes", gaugeKind, "Go runtime memory limit (GOMEMLIMIT).", float64(debug.SetMemoryLimit(-1)))
	m.family("go_gc_duration_seconds", summaryKind, "Stop-the-world pause durations of garbage collection cycles.")
	m.sample("go_gc_duration_seconds_sum", float64(ms.PauseTotalNs)/1e9)
	m.sample("go_gc_duration_seconds_count", float64(ms.NumGC))
	for _, v := range []struct {
		name, help string
		kind       metricKind
		value      uint64
	}{
		{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", gaugeKind, ms.Alloc},
		{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now.", counterKind, ms.TotalAlloc},
		{"go_memstats_sys_bytes", "Number of bytes obtained from the system.", gaugeKind, ms.Sys},
		{"go_memstats_mallocs_total", "Total number of heap objects allocated.", counterKind, ms.Mallocs},
		{"go_memstats_frees_total", "Total number of heap objects freed.", counterKind, ms.Frees},
		{"go_memstats_heap_alloc_bytes", "Heap bytes allocated and currently in use.", gaugeKind, ms.HeapAlloc},
		{"go_memstats_heap_sys_bytes", "Heap bytes obtained from the system.", gaugeKind, ms.HeapSys},
		{"go_memstats_heap_idle_bytes", "Heap bytes waiting to be used.", gaugeKind, ms.HeapIdle},
		{"go_memstats_heap_inuse_bytes", "Heap bytes in spans in use.", gaugeKind, ms.HeapInuse},
		{"go_memstats_heap_released_bytes", "Heap bytes released to the OS.", gaugeKind, ms.HeapReleased},
		{"go_memstats_heap_objects", "Number of currently allocated heap objects.", gaugeKind, ms.HeapObjects},
		{"go_memstats_stack_inuse_bytes", "Bytes in use by the stack allocator.", gaugeKind, ms.StackInuse},
		{"go_memstats_stack_sys_bytes", "Bytes obtained from the system for the stack allocator.", gaugeKind, ms.StackSys},
		{"go_memstats_gc_sys_bytes", "Bytes used for garbage collection system metadata.", gaugeKind, ms.GCSys},
		{"go_memstats_next_gc_bytes", "Heap bytes when the next garbage collection will take place.", gaugeKind, ms.NextGC},
	} {
		m.metric(v.name, v.kind, v.help, float64(v.value))
	}
	m.metric("go_memstats_last_gc_time_seconds", gaugeKind, "Seconds since 1970 of the last garbage collection.", float64(ms.LastGC)/1e9)
}

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
