package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSidecarRuntime(t *testing.T) {
	tests := []struct {
		name    string
		overlay bool
		env     map[string]string
		want    sidecarSettings
	}{
		{"default", false, nil, sidecarSettings{procs: 1, gcPercent: 50}},
		{"GOMAXPROCS in the environment wins", false, map[string]string{"GOMAXPROCS": "4"}, sidecarSettings{gcPercent: 50}},
		{"GOGC in the environment wins", false, map[string]string{"GOGC": "off"}, sidecarSettings{procs: 1}},
		{"even empty", false, map[string]string{"GOMAXPROCS": "", "GOGC": ""}, sidecarSettings{}},
		{"overlay: every core for WireGuard", true, nil, sidecarSettings{gcPercent: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if d := cmp.Diff(tt.want, sidecarRuntime(tt.overlay, lookup), cmp.AllowUnexported(sidecarSettings{})); d != "" {
				t.Errorf("sidecarRuntime (-want +got):\n%s", d)
			}
		})
	}
}
