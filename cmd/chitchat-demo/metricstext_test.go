package main

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/internal/minihttp/minihttptest"
)

func TestMetricsText(t *testing.T) {
	tests := []struct {
		name  string
		write func(m *metricsText)
		want  string
	}{
		{"counter", func(m *metricsText) { m.metric("a_total", counterKind, "A things.", 3) },
			"# HELP a_total A things.\n# TYPE a_total counter\na_total 3\n"},
		{"labels escaped", func(m *metricsText) {
			m.family("b", gaugeKind, "back\\slash\nnewline")
			m.sample("b", 1, "x", `q"uo\te`+"\n", "y", "2")
		}, "# HELP b back\\\\slash\\nnewline\n# TYPE b gauge\nb{x=\"q\\\"uo\\\\te\\n\",y=\"2\"} 1\n"},
		{"values as the Prometheus client writes them", func(m *metricsText) {
			for _, v := range []float64{0, 1.5, 1234567, 1e21, math.Inf(1), math.Inf(-1), math.NaN()} {
				m.sample("c", v)
			}
		}, "c 0\nc 1.5\nc 1.234567e+06\nc 1e+21\nc +Inf\nc -Inf\nc NaN\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m metricsText
			tt.write(&m)
			if d := cmp.Diff(tt.want, string(m.b)); d != "" {
				t.Errorf("exposition (-want +got):\n%s", d)
			}
		})
	}
}

func TestMetricsHTTPHandler(t *testing.T) {
	h := metricsHTTPHandler(func(m *metricsText) { m.metric("a", gaugeKind, "A.", 1) }, func(m *metricsText) { m.metric("b", gaugeKind, "B.", 2) })
	rec := minihttptest.NewRecorder()
	h.ServeHTTP(rec, minihttptest.NewRequest("GET", "/metrics", nil))
	if got := rec.Header().Get("Content-Type"); got != metricsContentType {
		t.Errorf("Content-Type = %q, want %q", got, metricsContentType)
	}
	want := "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 2\n"
	if d := cmp.Diff(want, rec.Body.String()); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}
