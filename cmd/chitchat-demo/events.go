package main

// /events: the document of / as Server-Sent Events, for /ui and the tests.
//
//	eventHub.run (one goroutine, while ≥ 1 stream) ── every gossip interval:
//	    Snapshot → json.Marshal → changed? → publish one shared frame
//	stream 1 … stream N (≤ --http_max_event_streams; 503 past it)
//	    wait for a newer frame → write it (deadline eventWriteTimeout) → …
//
// The state is serialised once per interval for every stream together, and
// only while someone listens. A stream writes the latest frame when it is
// ready for one: a slow reader skips the frames it missed instead of
// queueing them, and a reader that stops reading is dropped once a write
// has waited eventWriteTimeout.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// Pacing of /events.
const (
	minEventInterval  = 10 * time.Millisecond // floor for very short gossip intervals
	eventWriteTimeout = 10 * time.Second      // a client that stops reading is dropped
	eventRetry        = "retry: 1000\n"       // EventSource reconnects after 1 s instead of ~3 s
)

// eventFrame is one event, shared by every stream: "data: <JSON>\n\n".
type eventFrame struct {
	seq  uint64 // 1, 2, …: frames are published in this order
	data []byte
}

// eventHub serialises the document for every /events stream.
type eventHub struct {
	interval   time.Duration
	maxStreams int
	// document returns the current document as JSON.
	document func() ([]byte, error)
	log      *slog.Logger

	serialisations atomic.Uint64 // calls of document, for the tests and /metrics

	mu      sync.Mutex // guards the fields below
	streams int
	stop    chan struct{} // closes to stop the current run; nil when not running
	latest  *eventFrame   // nil until the current run published its first frame
	changed chan struct{} // closed (and replaced) when latest changes
}

func newEventHub(interval time.Duration, maxStreams int, document func() ([]byte, error), log *slog.Logger) *eventHub {
	return &eventHub{
		interval:   max(interval, minEventInterval),
		maxStreams: maxStreams,
		document:   document,
		log:        log,
		changed:    make(chan struct{}),
	}
}

// newAPIEventHub is the hub of the api's /events: the document of / of
// srv, checked once per gossip interval.
func newAPIEventHub(srv *chitchat.Server, cfg chitchat.Config, maxStreams int, log *slog.Logger) *eventHub {
	interval := cmp.Or(cfg.GossipInterval, chitchat.DefaultGossipInterval)
	return newEventHub(interval, maxStreams, func() ([]byte, error) {
		return json.Marshal(document(srv.Snapshot()))
	}, log)
}

// join registers a stream, starting the hub if it is the first one. It
// returns false if maxStreams streams are open already.
func (h *eventHub) join() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams >= h.maxStreams {
		return false
	}
	h.streams++
	if h.streams == 1 {
		// What a previous run published is stale: the first stream waits
		// for this run's first frame.
		h.stop, h.latest = make(chan struct{}), nil
		go h.run(h.stop)
	}
	return true
}

// leave unregisters a stream, stopping the hub with the last one.
func (h *eventHub) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams--
	if h.streams == 0 {
		close(h.stop)
		h.stop = nil
	}
}

// current returns the latest frame (nil before the first) and a channel
// that is closed when there is a newer one.
func (h *eventHub) current() (*eventFrame, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest, h.changed
}

// run publishes the document at once, then whenever it changed, checked
// every interval, until stop is closed.
func (h *eventHub) run(stop chan struct{}) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	var last []byte
	for {
		doc, err := h.document()
		h.serialisations.Add(1)
		if err != nil {
			h.log.Error("/events: cannot encode the state", "err", err)
		} else if !bytes.Equal(doc, last) {
			last = doc
			h.publish(stop, doc)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// publish makes doc the latest frame, unless the run that made it was
// stopped meanwhile.
func (h *eventHub) publish(stop chan struct{}, doc []byte) {
	data := make([]byte, 0, len("data: ")+len(doc)+2)
	data = append(append(append(data, "data: "...), doc...), "\n\n"...)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != stop {
		return
	}
	seq := uint64(1)
	if h.latest != nil {
		seq = h.latest.seq + 1
	}
	h.latest = &eventFrame{seq: seq, data: data}
	close(h.changed)
	h.changed = make(chan struct{})
}

// events serves GET /events: one event at once, then one whenever the
// document changed. The heartbeat changes every round, so a healthy
// cluster sends an event per gossip interval; /ui and the tests follow the
// cluster through this stream instead of polling /.
//
// Each event is a "data:" line holding the compact JSON document (the same
// fields as /), then an empty line.
func (a *api) events(w minihttp.ResponseWriter, r *minihttp.Request) {
	if !a.hub.join() {
		w.Header().Set("Retry-After", "5")
		writeError(w, minihttp.StatusServiceUnavailable,
			"too many /events streams are open on this node (--http_max_event_streams); try again later")
		return
	}
	defer a.hub.leave()
	rc := minihttp.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // ask proxies not to buffer the stream
	w.WriteHeader(minihttp.StatusOK)

	var sent uint64 // seq of the last frame written
	prefix := []byte(eventRetry)
	for {
		f, changed := a.hub.current()
		if f != nil && f.seq != sent {
			rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			if prefix != nil {
				if _, err := w.Write(prefix); err != nil {
					return
				}
				prefix = nil
			}
			if _, err := w.Write(f.data); err != nil {
				return // too slow, or gone: dropped
			}
			if err := rc.Flush(); err != nil {
				return
			}
			sent = f.seq
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-a.srv.Done():
			return // nothing will change any more
		}
	}
}
