package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processMetrics writes the process's metrics from /proc/self, under the
// names the Prometheus client's process collector gives them. A failed read
// is logged, and its metrics are left out of the answer.
func processMetrics(m *metricsText, log *slog.Logger) {
	st, err := readProcStat()
	if err != nil {
		log.Error("/metrics: reading /proc/self/stat", "err", err)
	} else {
		m.metric("process_cpu_seconds_total", counterKind, "Total user and system CPU time spent in seconds.", st.cpuSeconds)
		m.metric("process_resident_memory_bytes", gaugeKind, "Resident memory size in bytes.", float64(st.rssBytes))
		m.metric("process_virtual_memory_bytes", gaugeKind, "Virtual memory size in bytes.", float64(st.vsizeBytes))
		if start, err := processStartTime(st.startTicks); err == nil {
			m.metric("process_start_time_seconds", gaugeKind, "Start time of the process since unix epoch in seconds.", start)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		m.metric("process_open_fds", gaugeKind, "Number of open file descriptors.", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.metric("process_max_fds", gaugeKind, "Maximum number of open file descriptors.", float64(lim.Cur))
	}
}

// userHZ is the unit of /proc's clock ticks (USER_HZ), 100 on every Linux
// architecture Go supports, as the Prometheus client assumes.
const userHZ = 100

type procStat struct {
	cpuSeconds float64
	rssBytes   int64
	vsizeBytes int64
	startTicks uint64
}

func readProcStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b, os.Getpagesize())
}

// parseProcStat reads utime, stime, starttime, vsize and rss (fields 14,
// 15, 22, 23, 24 of proc(5)) after the command name, which may hold spaces
// and parentheses.
func parseProcStat(b []byte, pageSize int) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/self/stat: no command name in %q", b)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/self/stat: %d fields after the command name, want at least 22", len(f))
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	var v [5]uint64
	var err error
	for k, n := range []int{14, 15, 22, 23, 24} {
		if v[k], err = field(n); err != nil {
			return procStat{}, fmt.Errorf("/proc/self/stat field %d: %w", n, err)
		}
	}
	return procStat{
		cpuSeconds: float64(v[0]+v[1]) / userHZ,
		startTicks: v[2],
		vsizeBytes: int64(v[3]),
		rssBytes:   int64(v[4]) * int64(pageSize),
	}, nil
}

// processStartTime is the start time in seconds since 1970: the boot time
// (btime of /proc/stat) plus the process's start in ticks since boot.
func processStartTime(startTicks uint64) (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat btime: %w", err)
			}
			return float64(btime) + float64(startTicks)/userHZ, nil
		}
	}
	return 0, fmt.Errorf("/proc/stat has no btime")
}
