package main

import (
	_ "embed"
	"net/http"
)

// uiPage is /ui: one self-contained page (inline CSS and JavaScript, no
// external assets, no build step) that renders the cluster live from
// /events.
//
//go:embed ui.html
var uiPage []byte

func serveUI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The page needs nothing but its own inline code and this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Write(uiPage)
}
