package main

import (
	"bytes"
	_ "embed"
	"encoding/json"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// uiPage is /ui: one self-contained page (inline CSS and JavaScript, no
// external assets, no build step) that renders the cluster live from
// /events.
//
//go:embed ui.html
var uiPage []byte

// stateMarker is where the page gets the current state: the server writes
// the document of / there, so that the page draws the cluster as soon as
// it is parsed, before the first event (and a headless browser that
// renders or dumps the page once loaded sees it).
var stateMarker = []byte("/*STATE*/null")

// uiHead and uiTail are uiPage, with the services block spliced in
// (ui_services.go), before and after stateMarker.
var uiHead, uiTail, _ = bytes.Cut(withServicesBlock(uiPage), stateMarker)

func (a *api) serveUI(w minihttp.ResponseWriter, _ *minihttp.Request) {
	a.writeUIPage(w, document(a.srv.Snapshot()))
}

// writeUIPage answers the page with the state doc written in it.
func (a *api) writeUIPage(w minihttp.ResponseWriter, doc stateDoc) {
	// json.Marshal escapes <, > and & (as \u003c...), so no value can end
	// the <script> element the state is written in.
	state, err := json.Marshal(doc)
	if err != nil {
		a.internalError(w, "encoding the state for /ui", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The page needs nothing but its own inline code and this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	page := make([]byte, 0, len(uiHead)+len(state)+len(uiTail))
	w.Write(append(append(append(page, uiHead...), state...), uiTail...))
}
