package minihttptest

import (
	"io"
	"strings"
	"testing"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

func TestRecorder(t *testing.T) {
	rec := NewRecorder()
	h := minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		w.Header().Set("X-A", "1")
		w.WriteHeader(minihttp.StatusNotFound)
		w.WriteHeader(minihttp.StatusOK) // superfluous
		io.WriteString(w, r.Header.Get("Content-Length"))
		minihttp.NewResponseController(w).Flush()
	})
	h.ServeHTTP(rec, NewRequest("POST", "/p", strings.NewReader("hello")))
	if rec.Code != minihttp.StatusNotFound || rec.Body.String() != "5" || rec.HeaderMap.Get("X-A") != "1" || !rec.Flushed {
		t.Errorf("recorded %d %q %v flushed %v; want 404 \"5\" X-A: 1, flushed", rec.Code, rec.Body, rec.HeaderMap, rec.Flushed)
	}
}

// A Server serves its handler on loopback to net/http's client.
func TestServer(t *testing.T) {
	s := NewServer(minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		io.WriteString(w, "hi "+r.Method)
	}))
	defer s.Close()
	resp, err := s.Client().Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "hi GET" {
		t.Errorf("GET / = %d %q, want 200 \"hi GET\"", resp.StatusCode, b)
	}
}
