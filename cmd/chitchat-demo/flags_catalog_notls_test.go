//go:build chitchat_omit_tls

package main

import (
	"strings"
	"testing"
)

// The sidecar build has no TLS: a service with an https:// check stops the
// node at start-up with what to do, instead of failing every check.
func TestHTTPSCheckRefusedInSidecarBuild(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "web.json", `{"service": {"name": "web", "port": 8443,
		"check": {"http": "https://127.0.0.1:8443/health", "interval": "10s"}}}`)
	_, err := parseNodeFlags([]string{"--service_file", file})
	if err == nil || !strings.Contains(err.Error(), "https:// checks need TLS") || !strings.Contains(err.Error(), "chitchat_omit_tls") {
		t.Errorf("parseNodeFlags(an https check) = %v, want an error naming https and the build tag", err)
	}
}
