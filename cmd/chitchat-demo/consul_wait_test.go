package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// consulGet fetches base+path and returns the status, X-Consul-Index (0 if
// absent) and body.
func consulGet(ctx context.Context, base, path string) (int, uint64, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return resp.StatusCode, index, b, nil
}

// waitConsul follows base+path with blocking queries (each one returns
// when the part of the catalog it shows changes) until cond holds for the
// decoded answer, which it returns.
func waitConsul[T any](ctx context.Context, t *testing.T, base, path, desc string, cond func(T) bool) T {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var index uint64
	for {
		code, next, body, err := consulGet(ctx, base, fmt.Sprintf("%s%sindex=%d", path, sep, index))
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", base, desc, err)
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s%s = %d %s", base, path, code, body)
		}
		var v T
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s%s: %v: %s", base, path, err, body)
		}
		if cond(v) {
			return v
		}
		if next <= index {
			t.Fatalf("GET %s%s: X-Consul-Index %d after %d: the index must grow", base, path, next, index)
		}
		index = next
	}
}

// liveNodes is a condition on /v1/internal/ui/nodes: exactly these nodes,
// each with a passing serfHealth.
func liveNodes(names ...string) func([]uiNodeDoc) bool {
	return func(nodes []uiNodeDoc) bool {
		var live []string
		for _, n := range nodes {
			if len(n.Checks) > 0 && n.Checks[0].CheckID == serfCheckID && n.Checks[0].Status == "passing" {
				live = append(live, n.Node)
			}
		}
		return strings.Join(live, ",") == strings.Join(names, ",")
	}
}
