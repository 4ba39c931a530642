package minihttp

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// wrapper is a ResponseWriter of middleware, which a ResponseController
// sees through with Unwrap.
type wrapper struct{ ResponseWriter }

func (w wrapper) Unwrap() ResponseWriter { return w.ResponseWriter }

// Flush through a wrapper sends what was written at once, before the
// handler returns.
func TestResponseControllerFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		flushErr := make(chan error, 1)
		_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			w = wrapper{wrapper{w}}
			io.WriteString(w, "first")
			flushErr <- NewResponseController(w).Flush()
			<-release
			io.WriteString(w, "second")
		}), nil)
		c := ln.dial(t)
		go io.WriteString(c, get11)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len("first"))
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
			t.Fatalf("before the handler returned: %q, %v", first, err)
		}
		if err := <-flushErr; err != nil {
			t.Errorf("Flush() = %v", err)
		}
		close(release)
		if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "second" {
			t.Errorf("then %q, %v; want \"second\"", rest, err)
		}
	})
}

// A controller of a ResponseWriter that is not the server's flushes with
// its Flush method if it has one, and supports nothing else.
func TestResponseControllerOtherWriter(t *testing.T) {
	rec := &flushRecorder{}
	c := NewResponseController(rec)
	if err := c.Flush(); err != nil || !rec.flushed {
		t.Errorf("Flush() = %v, flushed %v; want nil, true", err, rec.flushed)
	}
	if err := NewResponseController(&recorder{header: Header{}}).Flush(); err != ErrNotSupported {
		t.Errorf("Flush() of a writer without Flush = %v, want ErrNotSupported", err)
	}
	if err := c.SetWriteDeadline(time.Time{}); err != ErrNotSupported {
		t.Errorf("SetWriteDeadline() = %v, want ErrNotSupported", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != ErrNotSupported {
		t.Errorf("SetReadDeadline() = %v, want ErrNotSupported", err)
	}
}

type flushRecorder struct {
	recorder
	flushed bool
}

func (r *flushRecorder) Flush() { r.flushed = true }
