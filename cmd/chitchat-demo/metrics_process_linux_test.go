package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcStat(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime vsize rss ...
	tests := []struct {
		name    string
		stat    string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (chitchat-demo) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 300 18446744073709551615",
			procStat{cpuSeconds: 3, startTicks: 12345, vsizeBytes: 1000000, rssBytes: 300 * 4096}, false},
		{"command name with spaces and parentheses", "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 7 8 9 0",
			procStat{cpuSeconds: 0.03, startTicks: 7, vsizeBytes: 8, rssBytes: 9 * 4096}, false},
		{"truncated", "42 (x) S 1 2 3", procStat{}, true},
		{"no command name", "garbage", procStat{}, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 x 2 0 0 20 0 1 0 7 8 9 0", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.stat), 4096)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(procStat{})); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
