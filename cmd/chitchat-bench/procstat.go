package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTicks returns the utime+stime of every running process of the
// cluster, in clock ticks.
func (c *cluster) cpuTicks() (uint64, error) {
	var sum uint64
	for _, p := range c.procs {
		if p.exitErr() != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			return 0, err
		}
		t, err := parseStatCPU(b)
		if err != nil {
			return 0, fmt.Errorf("node %d: %w", p.i, err)
		}
		sum += t
	}
	return sum, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may hold spaces
// and parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %.60q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line with %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat utime %q, stime %q: not numbers", f[11], f[12])
	}
	return utime + stime, nil
}

// rssKB returns the VmRSS of every running process of the cluster, in kB.
func (c *cluster) rssKB() ([]float64, error) {
	var out []float64
	for _, p := range c.procs {
		if p.exitErr() != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return nil, err
		}
		kb, err := parseVmRSS(b)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", p.i, err)
		}
		out = append(out, float64(kb))
	}
	return out, nil
}

// parseVmRSS returns the VmRSS line of a /proc/PID/status, in kB.
func parseVmRSS(b []byte) (uint64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", strings.TrimSpace(line))
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no VmRSS line in /proc status")
}

// clockTicks returns the kernel's clock ticks per second for /proc times
// (sysconf(_SC_CLK_TCK)), read from this process's auxiliary vector
// (AT_CLKTCK); 100, Linux's USER_HZ, if it cannot be read.
func clockTicks() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	return auxvClockTicks(b)
}

// auxvClockTicks finds AT_CLKTCK (17) in a 64-bit auxiliary vector.
func auxvClockTicks(b []byte) uint64 {
	const atNull, atClkTck = 0, 17
	for ; len(b) >= 16; b = b[16:] {
		k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
		if k == atNull {
			break
		}
		if k == atClkTck && v > 0 {
			return v
		}
	}
	return 100
}
