package minihttp

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// A ResponseController reaches the connection under a ResponseWriter:
// flushing and deadlines, as net/http's.
type ResponseController struct {
	w ResponseWriter
}

// NewResponseController returns the controller of w.
func NewResponseController(w ResponseWriter) *ResponseController {
	return &ResponseController{w}
}

// ErrNotSupported is the error of a controller method on a ResponseWriter
// that is not the server's (a Recorder).
var ErrNotSupported = errors.New("minihttp: feature not supported by this ResponseWriter")

// unwrapper is a ResponseWriter that wraps another, as net/http's.
type unwrapper interface{ Unwrap() ResponseWriter }

func (c *ResponseController) response() *response {
	w := c.w
	for {
		switch t := w.(type) {
		case *response:
			return t
		case unwrapper:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// Flush sends the head and what the handler wrote so far.
func (c *ResponseController) Flush() error {
	if r := c.response(); r != nil {
		return r.flush()
	}
	if f, ok := c.w.(interface{ Flush() }); ok {
		f.Flush()
		return nil
	}
	return ErrNotSupported
}

// SetWriteDeadline sets the deadline of writing the answer; the zero time
// means none.
func (c *ResponseController) SetWriteDeadline(t time.Time) error {
	if r := c.response(); r != nil {
		return r.c.nc.SetWriteDeadline(t)
	}
	return ErrNotSupported
}

// SetReadDeadline sets the deadline of reading the request's body; the
// zero time means none.
func (c *ResponseController) SetReadDeadline(t time.Time) error {
	if r := c.response(); r != nil {
		return r.c.nc.SetReadDeadline(t)
	}
	return ErrNotSupported
}

// MaxBytesError is the error of a MaxBytesReader's body past its limit.
type MaxBytesError struct {
	Limit int64
}

func (e *MaxBytesError) Error() string {
	return fmt.Sprintf("minihttp: request body too large (more than %d bytes)", e.Limit)
}

// MaxBytesReader bounds body to n bytes: reading past them returns a
// *MaxBytesError, and the connection closes after the answer (the rest of
// the body is not read for another request).
func MaxBytesReader(w ResponseWriter, body io.ReadCloser, n int64) io.ReadCloser {
	if n < 0 {
		n = 0
	}
	return &maxBytesReader{w: w, r: body, left: n, limit: n}
}

type maxBytesReader struct {
	w     ResponseWriter
	r     io.ReadCloser
	left  int64
	limit int64
	err   error
}

func (m *maxBytesReader) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, to tell a body of exactly the
	// limit from a longer one.
	if int64(len(p))-1 > m.left {
		p = p[:m.left+1]
	}
	n, err := m.r.Read(p)
	if int64(n) <= m.left {
		m.left -= int64(n)
		m.err = err
		return n, err
	}
	n = int(m.left)
	m.left = 0
	m.err = &MaxBytesError{m.limit}
	if r := (&ResponseController{m.w}).response(); r != nil {
		r.closeAfter = true
	}
	return n, m.err
}

func (m *maxBytesReader) Close() error { return m.r.Close() }
