// Package minihttptest is httptest for minihttp: a Recorder of answers, a
// request builder, and a server on a loopback port.
package minihttptest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// A ResponseRecorder records what a handler answered.
type ResponseRecorder struct {
	Code      int // the status; 200 if the handler wrote without one
	HeaderMap minihttp.Header
	Body      *bytes.Buffer
	Flushed   bool

	wroteHeader bool
}

// NewRecorder returns a recorder ready for a handler.
func NewRecorder() *ResponseRecorder {
	return &ResponseRecorder{Code: 200, HeaderMap: minihttp.Header{}, Body: new(bytes.Buffer)}
}

func (r *ResponseRecorder) Header() minihttp.Header { return r.HeaderMap }

func (r *ResponseRecorder) WriteHeader(code int) {
	if r.wroteHeader || code < 200 {
		return
	}
	r.wroteHeader = true
	r.Code = code
}

func (r *ResponseRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(200)
	return r.Body.Write(b)
}

// Flush records that the handler flushed.
func (r *ResponseRecorder) Flush() {
	r.WriteHeader(200)
	r.Flushed = true
}

// NewRequest returns a request for a handler, as minihttp.NewRequest, with
// a Content-Length header for a body of known length.
func NewRequest(method, target string, body io.Reader) *minihttp.Request {
	r := minihttp.NewRequest(method, target, body)
	if r.ContentLength > 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	return r
}

// A Server serves a handler with minihttp on a loopback port.
type Server struct {
	URL      string // http://127.0.0.1:port
	Listener net.Listener
	Config   *minihttp.Server

	client *http.Client
	done   chan struct{}
}

// NewServer starts a server of h.
func NewServer(h minihttp.Handler) *Server {
	s := NewUnstartedServer(h)
	s.Start()
	return s
}

// NewUnstartedServer returns a server of h that Start starts: its Config
// can be changed before.
func NewUnstartedServer(h minihttp.Handler) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("minihttptest: " + err.Error())
	}
	return &Server{Listener: ln, Config: &minihttp.Server{Handler: h}, done: make(chan struct{})}
}

// Start serves in the background.
func (s *Server) Start() {
	s.URL = "http://" + s.Listener.Addr().String()
	s.client = &http.Client{Transport: &http.Transport{Proxy: nil}}
	go func() {
		defer close(s.done)
		s.Config.Serve(s.Listener)
	}()
}

// Client returns an HTTP client for the server (net/http's: the tests
// check minihttp against an implementation that is not its own).
func (s *Server) Client() *http.Client { return s.client }

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.Config.Close()
	<-s.done
	s.client.CloseIdleConnections()
	s.Config.Shutdown(context.Background())
}
