package main

// A writer of Prometheus' text exposition format (version 0.0.4), which is
// all /metrics needs: every value is read from Stats at scrape time. It
// replaces the Prometheus client library, whose packages (with protobuf and
// procfs) made up 1.9 MB of the demo's mapped image and 2 ms of its start-up
// (issue 15).

import (
	"math"
	"strconv"
	"strings"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

type metricKind string

const (
	counterKind metricKind = "counter"
	gaugeKind   metricKind = "gauge"
	summaryKind metricKind = "summary"
)

// metricsText accumulates an exposition.
type metricsText struct {
	b []byte
}

// family starts a metric family: its HELP and TYPE lines.
func (m *metricsText) family(name string, kind metricKind, help string) {
	m.b = append(m.b, "# HELP "...)
	m.b = append(m.b, name...)
	m.b = append(m.b, ' ')
	m.b = append(m.b, helpEscaper.Replace(help)...)
	m.b = append(m.b, "\n# TYPE "...)
	m.b = append(m.b, name...)
	m.b = append(m.b, ' ')
	m.b = append(m.b, kind...)
	m.b = append(m.b, '\n')
}

// sample writes one line: name, labels (name, value pairs), value.
func (m *metricsText) sample(name string, v float64, labels ...string) {
	m.b = append(m.b, name...)
	if len(labels) > 0 {
		m.b = append(m.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.b = append(m.b, ',')
			}
			m.b = append(m.b, labels[i]...)
			m.b = append(m.b, `="`...)
			m.b = append(m.b, labelEscaper.Replace(labels[i+1])...)
			m.b = append(m.b, '"')
		}
		m.b = append(m.b, '}')
	}
	m.b = append(m.b, ' ')
	m.b = appendMetricValue(m.b, v)
	m.b = append(m.b, '\n')
}

// metric writes a family of one unlabelled sample.
func (m *metricsText) metric(name string, kind metricKind, help string, v float64) {
	m.family(name, kind, help)
	m.sample(name, v)
}

// appendMetricValue formats v as the Prometheus client does.
func appendMetricValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// metricsSource writes its families into an exposition at scrape time.
type metricsSource func(m *metricsText)

// metricsHTTPHandler serves the families of every source, in order.
func metricsHTTPHandler(sources ...metricsSource) minihttp.Handler {
	return minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		var m metricsText
		for _, src := range sources {
			src(&m)
		}
		w.Header().Set("Content-Type", metricsContentType)
		w.Write(m.b)
	})
}
