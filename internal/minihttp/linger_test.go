package minihttp

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A client still sending a body the server will not read gets the answer,
// not a reset: over TCP on loopback, since the reset is TCP's (closing a
// socket with unread input sends RST, and the client's kernel may drop the
// answer before the client reads it).
func TestAnswerBeforeCloseOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: HandlerFunc(func(w ResponseWriter, r *Request) {
		r.Body = MaxBytesReader(w, r.Body, 1<<10)
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(StatusRequestEntityTooLarge)
		}
	})}
	done := make(chan error)
	go func() { done <- s.Serve(ln) }()
	defer func() {
		s.Close()
		<-done
	}()
	url := "http://" + ln.Addr().String() + "/"
	const body = 4 << 20
	const tries = 20

	t.Run("body over the handler's limit", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		for i := range tries {
			resp, err := client.Post(url, "text/plain", bytes.NewReader(make([]byte, body)))
			if err != nil {
				t.Fatalf("POST %d: %v", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != StatusRequestEntityTooLarge {
				t.Fatalf("POST %d: status %d, want 413", i, resp.StatusCode)
			}
		}
	})
	t.Run("head too large", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		big := strings.Repeat("x", body)
		for i := range tries {
			req, err := http.NewRequest("GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Big", big)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %d: %v", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("GET %d: status %d, want 431", i, resp.StatusCode)
			}
		}
	})
}
