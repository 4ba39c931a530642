package main

// /events in a synctest bubble: a node on the in-memory network, the real
// HTTP server over net.Pipe connections (pipeListener), virtual time.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// eventsInterval is the gossip interval of eventsNode: the pace of /events.
const eventsInterval = time.Second

// eventsNode runs a node and its API in the bubble, with at most
// maxStreams /events streams.
func eventsNode(t *testing.T, maxStreams int) (*api, *pipeListener) {
	t.Helper()
	network, err := transport.NewNetwork(transport.NetworkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := chitchat.Config{
		ID:             chitchat.NodeID{Name: "node_0", Generation: 1, Addr: netip.MustParseAddrPort("10.0.0.1:7280")},
		ClusterID:      "testing",
		GossipInterval: eventsInterval,
	}
	srv, err := chitchat.Spawn(t.Context(), cfg, network)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	a := newAPI(srv, cfg, nil, httpOptions{maxConns: 100, maxEventStreams: maxStreams})
	return a, serveInBubble(t, a.routes(), 100)
}

// sseClient is a client of /events on one connection.
type sseClient struct {
	conn net.Conn
	resp *http.Response
	sc   *bufio.Scanner
}

// openEvents sends GET /events and reads the answer's head.
func openEvents(t *testing.T, ln *pipeListener) *sseClient {
	t.Helper()
	c := ln.Dial()
	t.Cleanup(func() { c.Close() })
	go io.WriteString(c, "GET /events HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	return &sseClient{conn: c, resp: resp, sc: sc}
}

// next returns the next event's data, or "" once the stream ended.
func (s *sseClient) next() string {
	for s.sc.Scan() {
		if data, ok := strings.CutPrefix(s.sc.Text(), "data: "); ok {
			return data
		}
	}
	return ""
}

func (h *eventHub) openStreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

// However many streams follow the node, the state is serialised once per
// interval, and every stream gets the same frames.
func TestEventsSerialisedOncePerIntervalForAllStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, ln := eventsNode(t, 10)
		const streams, intervals = 5, 10
		received := make([][]string, streams)
		var wg sync.WaitGroup
		for i := range streams {
			s := openEvents(t, ln)
			wg.Go(func() {
				for data := s.next(); data != ""; data = s.next() {
					received[i] = append(received[i], data)
				}
			})
		}
		time.Sleep(intervals * eventsInterval)
		synctest.Wait()
		// One at the start, one per interval: not one per stream.
		if got, want := a.hub.serialisations.Load(), uint64(intervals+1); got != want {
			t.Errorf("the state was serialised %d times for %d streams over %d intervals, want %d", got, streams, intervals, want)
		}
		ln.Close()
		a.srv.Shutdown() // ends the streams
		wg.Wait()
		for i := range streams {
			if len(received[i]) < 2 || strings.Join(received[i], "\n") != strings.Join(received[0], "\n") {
				t.Errorf("stream %d got %d events, stream 0 %d; want the same ones, at least 2", i, len(received[i]), len(received[0]))
			}
		}
	})
}

// Past --http_max_event_streams, /events answers 503; a stream that ends
// frees its place; with no stream left, nothing is serialised.
func TestEventsStreamCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, ln := eventsNode(t, 2)
		s1, s2 := openEvents(t, ln), openEvents(t, ln)
		for _, s := range []*sseClient{s1, s2} {
			if s.resp.StatusCode != http.StatusOK || s.next() == "" {
				t.Fatalf("stream: %d, no event; want 200 and an event", s.resp.StatusCode)
			}
		}
		s3 := openEvents(t, ln)
		body, _ := io.ReadAll(s3.resp.Body)
		if s3.resp.StatusCode != http.StatusServiceUnavailable || s3.resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(body), "--http_max_event_streams") {
			t.Errorf("third stream = %d (Retry-After %q) %s, want 503 with Retry-After naming --http_max_event_streams",
				s3.resp.StatusCode, s3.resp.Header.Get("Retry-After"), body)
		}
		s1.conn.Close()
		synctest.Wait() // the server saw it close
		if n := a.hub.openStreams(); n != 1 {
			t.Fatalf("%d streams open after one of two closed, want 1", n)
		}
		if s4 := openEvents(t, ln); s4.resp.StatusCode != http.StatusOK || s4.next() == "" {
			t.Errorf("a stream once one closed = %d, want 200 and an event", s4.resp.StatusCode)
		}
		// Everyone leaves: the hub stops serialising.
		for _, c := range []net.Conn{s2.conn} {
			c.Close()
		}
		ln.Close()
	})
	synctest.Test(t, func(t *testing.T) {
		a, ln := eventsNode(t, 2)
		s := openEvents(t, ln)
		s.next()
		s.conn.Close()
		synctest.Wait()
		before := a.hub.serialisations.Load()
		time.Sleep(10 * eventsInterval)
		synctest.Wait()
		if got := a.hub.serialisations.Load(); got != before {
			t.Errorf("serialised %d times in 10 intervals without a stream, want 0", got-before)
		}
	})
}

// A reader that stops reading is dropped after eventWriteTimeout, while
// the others keep getting their events; nothing is queued for it.
func TestEventsStalledReaderDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, ln := eventsNode(t, 10)
		healthy := openEvents(t, ln)
		var (
			mu   sync.Mutex
			last string // the latest event the healthy stream read
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for data := healthy.next(); data != ""; data = healthy.next() {
				mu.Lock()
				last = data
				mu.Unlock()
			}
		}()
		// The stalled client sends its request and never reads a byte.
		stalled := ln.Dial()
		defer stalled.Close()
		go io.WriteString(stalled, "GET /events HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n\r\n")
		synctest.Wait()
		if n := a.hub.openStreams(); n != 2 {
			t.Fatalf("%d streams open, want 2", n)
		}
		time.Sleep(eventWriteTimeout - time.Nanosecond)
		synctest.Wait()
		if n := a.hub.openStreams(); n != 2 {
			t.Fatalf("the stalled stream was dropped before %v", eventWriteTimeout)
		}
		// Meanwhile the healthy stream kept up: it has read the latest
		// frame, many frames after the one the stalled stream is stuck on.
		f, _ := a.hub.current()
		mu.Lock()
		got := last
		mu.Unlock()
		if f == nil || f.seq < 3 || "data: "+got+"\n\n" != string(f.data) {
			t.Errorf("the healthy stream's latest event is not the hub's latest frame (%+v), or too few frames", f)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := a.hub.openStreams(); n != 1 {
			t.Errorf("%d streams open %v after a reader stalled, want 1 (it is dropped)", n, eventWriteTimeout)
		}
		a.srv.Shutdown()
		<-done
	})
}
