package main

// The HTTP API flags: --http_*.

import (
	"flag"
	"strconv"
)

// httpOptions is the validated HTTP part of the command line.
type httpOptions struct {
	// maxConns caps the TCP connections served at once; further ones wait
	// in the kernel's accept queue until one closes.
	maxConns int
}

// httpFlags holds the raw text of the HTTP flags.
type httpFlags struct {
	maxConns stringValue
}

// Defaults of the HTTP flags.
const (
	defaultHTTPMaxConns = "256"
)

func (hf *httpFlags) register(fs *flag.FlagSet) {
	hf.maxConns = stringValue{s: defaultHTTPMaxConns}
	fs.Var(&hf.maxConns, "http_max_connections", "HTTP API: most TCP `connections` served at once; more wait until one closes")
}

// parseHTTPFlags returns the HTTP options.
func parseHTTPFlags(hf *httpFlags, bad func(string, ...any)) httpOptions {
	var o httpOptions
	if n, err := strconv.Atoi(hf.maxConns.s); err != nil || n < 1 || n > 1_000_000 {
		bad("--http_max_connections %q: must be a whole number between 1 and 1000000 (default %s)", hf.maxConns.s, defaultHTTPMaxConns)
	} else {
		o.maxConns = n
	}
	return o
}
