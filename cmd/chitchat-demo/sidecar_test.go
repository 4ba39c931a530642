package main

import "testing"

func TestSidecarProcs(t *testing.T) {
	tests := []struct {
		name    string
		overlay bool
		env     map[string]string
		want    int
	}{
		{"default: one P", false, nil, 1},
		{"GOMAXPROCS in the environment wins", false, map[string]string{"GOMAXPROCS": "4"}, 0},
		{"even empty", false, map[string]string{"GOMAXPROCS": ""}, 0},
		{"overlay: every core for WireGuard", true, nil, 0},
		{"GOGC does not matter", false, map[string]string{"GOGC": "50"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if got := sidecarProcs(tt.overlay, lookup); got != tt.want {
				t.Errorf("sidecarProcs = %d, want %d", got, tt.want)
			}
		})
	}
}
