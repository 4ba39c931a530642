package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Pacing of /events.
const (
	minEventInterval  = 10 * time.Millisecond // floor for very short gossip intervals
	eventWriteTimeout = 10 * time.Second      // a client that stops reading is dropped
)

// events streams the document of / as Server-Sent Events: one event at
// once, then one whenever the document changed, checked once per gossip
// interval. The heartbeat changes every round, so a healthy cluster sends an
// event per interval; /ui and the tests follow the cluster through this
// stream instead of polling /.
//
// Each event is a "data:" line holding the compact JSON document (the same
// fields as /), then an empty line.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // ask proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)

	interval := cmp.Or(a.cfg.GossipInterval, chitchat.DefaultGossipInterval) // the pace of gossip
	t := time.NewTicker(max(interval, minEventInterval))
	defer t.Stop()
	var last, buf []byte
	// "retry" makes EventSource reconnect after 1 s instead of ~3 s.
	buf = append(buf, "retry: 1000\n"...)
	for {
		doc, err := json.Marshal(document(a.srv.Snapshot()))
		if err != nil {
			return
		}
		if !bytes.Equal(doc, last) {
			buf = append(buf, "data: "...)
			buf = append(buf, doc...)
			buf = append(buf, "\n\n"...)
			rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			last, buf = doc, buf[:0]
		}
		select {
		case <-r.Context().Done():
			return
		case <-a.srv.Done():
			return // nothing will change any more
		case <-t.C:
		}
	}
}
