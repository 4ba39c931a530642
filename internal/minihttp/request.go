package minihttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// Header is a request's or an answer's header fields, keyed by their
// canonical names (textproto.CanonicalMIMEHeaderKey): Get, Set, Add, Del
// and Values work as net/http's.
type Header = textproto.MIMEHeader

// A Request is one HTTP request as the server read it.
type Request struct {
	Method     string   // "GET", "POST", …
	URL        *url.URL // the request target: path and query (and scheme and host for an absolute-form target)
	Proto      string   // "HTTP/1.1" or "HTTP/1.0"
	ProtoMinor int      // 1 or 0
	Header     Header
	// Body is the request's body; it is never nil (an empty body reads
	// EOF at once) and the server closes it. Handlers may replace it (by
	// MaxBytesReader).
	Body io.ReadCloser
	// ContentLength is the body's length, -1 for a chunked body of unknown
	// length.
	ContentLength int64
	// Host is the Host header, or the host of an absolute-form target.
	Host string
	// RemoteAddr is the client's address as "IP:port".
	RemoteAddr string
	// Form, PostForm and MultipartForm are filled by ParseForm and
	// ParseMultipartForm.
	Form          url.Values
	PostForm      url.Values
	MultipartForm *multipart.Form

	ctx        context.Context
	pathValues map[string]string
}

// Context is the request's context, a child of Server.BaseContext's:
// cancelled when the handler returns and, for a request without a body,
// when the client goes away or Server.Close closes the connection
// (Shutdown lets handlers finish: end long ones through BaseContext).
func (r *Request) Context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// PathValue returns the segment of the path matched by the wildcard
// {name} of the ServeMux pattern that routed the request, unescaped, or ""
// if there is none.
func (r *Request) PathValue(name string) string { return r.pathValues[name] }

// SetPathValue sets the value PathValue returns for name.
func (r *Request) SetPathValue(name, value string) {
	if r.pathValues == nil {
		r.pathValues = make(map[string]string)
	}
	r.pathValues[name] = value
}

// NewRequest returns a request for target (a path with an optional query,
// or an absolute URL) as a handler would receive it, for tests and for
// handlers called directly: Host is target's host or "example.com", body
// may be nil.
func NewRequest(method, target string, body io.Reader) *Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic("minihttp.NewRequest: " + err.Error())
	}
	r := &Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{},
		Host: "example.com", RemoteAddr: "192.0.2.1:1234", Body: noBody{}}
	if u.Host != "" {
		r.Host = u.Host
	}
	if body != nil {
		r.Body = io.NopCloser(body)
		r.ContentLength = -1
		if b, ok := body.(interface{ Len() int }); ok { // strings.Reader, bytes.Buffer, …
			r.ContentLength = int64(b.Len())
		}
	}
	return r
}

// ErrNotMultipart is ParseMultipartForm's error for a body that is not
// multipart/form-data.
var ErrNotMultipart = errors.New("minihttp: request Content-Type isn't multipart/form-data")

// maxFormBytes bounds a url-encoded body that ParseForm reads when the
// handler did not bound it itself (net/http's limit).
const maxFormBytes = 10 << 20

// ParseForm fills Form with the query's parameters and, for a POST with an
// application/x-www-form-urlencoded body, PostForm (and Form) with the
// body's. It reads at most 10 MB of body; a handler that wants less wraps
// Body in MaxBytesReader first.
func (r *Request) ParseForm() error {
	if r.PostForm != nil {
		return nil
	}
	var err error
	r.PostForm = url.Values{}
	if r.Method == MethodPost {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			b, rerr := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
			switch {
			case rerr != nil:
				err = rerr
			case len(b) > maxFormBytes:
				err = errors.New("minihttp: url-encoded body too large")
			default:
				r.PostForm, err = url.ParseQuery(string(b))
			}
		}
	}
	q, qerr := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		err = qerr
	}
	r.Form = url.Values{}
	for k, vs := range r.PostForm {
		r.Form[k] = append(r.Form[k], vs...)
	}
	for k, vs := range q {
		r.Form[k] = append(r.Form[k], vs...)
	}
	return err
}

// ParseMultipartForm parses a multipart/form-data body, keeping at most
// maxMemory bytes of file parts in memory (the rest goes to temporary
// files, as mime/multipart does), after ParseForm. It returns
// ErrNotMultipart for any other body.
func (r *Request) ParseMultipartForm(maxMemory int64) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if r.MultipartForm != nil {
		return nil
	}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || r.Method != MethodPost {
		return ErrNotMultipart
	}
	boundary := params["boundary"]
	if boundary == "" {
		return ErrNotMultipart
	}
	f, err := multipart.NewReader(r.Body, boundary).ReadForm(maxMemory)
	if err != nil {
		return err
	}
	r.MultipartForm = f
	for k, vs := range f.Value {
		r.PostForm[k] = append(r.PostForm[k], vs...)
		r.Form[k] = append(r.Form[k], vs...)
	}
	return nil
}

// requestError is a request the server refuses before any handler sees it
// (the status to answer and why), or, returned by a body's Read, a body
// whose framing is malformed: the handler answers what it will, and the
// connection then closes.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{StatusBadRequest, fmt.Sprintf(format, args...)}
}

// readRequest reads one request's line and headers from br and sets up its
// body. The caller bounds what br may read (Server.MaxHeaderBytes) and how
// long. A *requestError is answered, and so is the header limit (431, by
// Server); any other error (EOF, a timeout, a reset) only closes the
// connection.
func readRequest(br *bufio.Reader) (*Request, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || strings.Contains(proto, " ") {
		return nil, badRequest("malformed request line %q", truncate(line))
	}
	r := &Request{Method: method, Proto: proto, Body: noBody{}}
	switch proto {
	case "HTTP/1.1":
		r.ProtoMinor = 1
	case "HTTP/1.0":
	default:
		if strings.HasPrefix(proto, "HTTP/") {
			return nil, &requestError{StatusHTTPVersionNotSupported, "only HTTP/1.1 and HTTP/1.0 are served"}
		}
		return nil, badRequest("malformed request line %q", truncate(line))
	}
	if target[0] != '/' && !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		// No asterisk-form (OPTIONS *) or authority-form (CONNECT): the
		// API serves paths.
		return nil, badRequest("request target %q is not a path", truncate(target))
	}
	if r.URL, err = url.ParseRequestURI(target); err != nil {
		return nil, badRequest("malformed request target %q", truncate(target))
	}
	hdr, err := readHeader(tp)
	if err != nil {
		return nil, err
	}
	r.Header = hdr

	hosts := hdr.Values("Host")
	switch {
	case len(hosts) > 1:
		return nil, badRequest("more than one Host header")
	case len(hosts) == 0 && r.ProtoMinor == 1:
		return nil, badRequest("missing Host header")
	case len(hosts) == 1:
		if !validHost(hosts[0]) {
			return nil, badRequest("malformed Host header %q", truncate(hosts[0]))
		}
		r.Host = hosts[0]
	}
	if r.URL.Host != "" {
		r.Host = r.URL.Host // RFC 9112 §3.2.2: the absolute-form target's authority wins
	}
	delete(hdr, "Host")

	if err := r.setBody(br); err != nil {
		return nil, err
	}
	return r, nil
}

// maxHeaderFields bounds the number of a request's header fields (browsers
// send about 20).
const maxHeaderFields = 256

// readHeader reads header fields up to the empty line (RFC 9112 §5), more
// strictly than textproto.ReadMIMEHeader: a name must be a token (textproto
// keeps "Transfer-Encoding : chunked", which this server would then ignore
// while a proxy in front may not), obs-fold is refused (RFC 9112 §5.2
// allows it) rather than joined, and there are at most maxHeaderFields
// fields, so that a head costs about its size in memory (textproto
// allocates 5 to 7 MiB for 256 KiB of four-byte fields).
func readHeader(tp *textproto.Reader) (Header, error) {
	h := Header{}
	for n := 0; ; n++ {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		if n == maxHeaderFields {
			return nil, &requestError{StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("more than %d header fields", maxHeaderFields)}
		}
		name, value, ok := strings.Cut(line, ":")
		value = strings.Trim(value, " \t")
		if !ok || !isToken(name) || !validFieldValue(value) {
			return nil, badRequest("malformed header line %q", truncate(line))
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		h[key] = append(h[key], value)
	}
}

// validFieldValue reports whether v is a field value (RFC 9110 §5.5): no
// control byte but tab.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// setBody frames the request's body from Transfer-Encoding and
// Content-Length (RFC 9112 §6), refusing every combination that two
// parsers could frame differently.
func (r *Request) setBody(br *bufio.Reader) error {
	te, hasTE := r.Header["Transfer-Encoding"]
	cl, hasCL := r.Header["Content-Length"]
	switch {
	case hasTE && hasCL:
		return badRequest("both Transfer-Encoding and Content-Length are set")
	case hasTE:
		if r.ProtoMinor == 0 {
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return &requestError{StatusNotImplemented, fmt.Sprintf("Transfer-Encoding %q: only chunked is understood", truncate(strings.Join(te, ", ")))}
		}
		r.ContentLength = -1
		r.Body = &chunkedReader{br: br}
	case hasCL:
		n, err := parseContentLength(cl)
		if err != nil {
			return err
		}
		r.ContentLength = n
		if n > 0 {
			r.Body = &fixedReader{r: br, n: n}
		}
	}
	return nil
}

func parseContentLength(values []string) (int64, error) {
	first := strings.TrimSpace(values[0])
	for _, v := range values[1:] {
		if strings.TrimSpace(v) != first {
			return 0, badRequest("Content-Length given twice with different values")
		}
	}
	if first == "" || len(first) > 18 {
		return 0, badRequest("malformed Content-Length %q", truncate(first))
	}
	var n int64
	for i := 0; i < len(first); i++ {
		c := first[i]
		if c < '0' || c > '9' {
			return 0, badRequest("malformed Content-Length %q", truncate(first))
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// isToken reports whether s is a token (RFC 9110 §5.6.2): a method or a
// field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHost reports whether h can be a Host header: the characters of a
// URI authority (RFC 3986), nothing that could end a header or a path.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// truncate shortens what a client sent before it goes into an error that
// is answered or logged.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// noBody is the body of a request that has none.
type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }
func (noBody) Close() error             { return nil }

// fixedReader reads a body of Content-Length n.
type fixedReader struct {
	r *bufio.Reader
	n int64 // bytes left
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	if err == io.EOF && f.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && f.n == 0 {
		err = io.EOF
	}
	return n, err
}

func (f *fixedReader) Close() error { return nil }

// chunkedReader reads a chunked body (RFC 9112 §7.1): chunk sizes in hex,
// extensions ignored, trailer fields checked and dropped.
type chunkedReader struct {
	br   *bufio.Reader
	left int64 // bytes left in the current chunk
	done bool
	err  error
	// needCRLF is set after a chunk's data, whose CRLF is still unread.
	needCRLF bool
	// excess is what the framing (size lines, extensions, CRLFs,
	// trailers) has cost beyond an allowance earned by the data.
	excess int64
}

const (
	// maxChunkLine bounds a chunk-size line with its extensions, and each
	// trailer line.
	maxChunkLine = 4 << 10
	// maxChunkExcess bounds excess, as net/http does (CVE-2023-39326):
	// each chunk may cost 16 bytes plus twice its data in framing, and a
	// body may go beyond that by this much in all. Without it, a body of
	// one-byte chunks with 4 KiB extensions makes the server read 4 KiB
	// per byte that a body limit counts, and trailers go on forever.
	maxChunkExcess = 16 << 10
)

var errChunked = badRequest("malformed chunked body")

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.err == nil && !c.done && c.left == 0 {
		if c.needCRLF {
			if err := c.readCRLF(); err != nil {
				c.err = err
				break
			}
			c.needCRLF = false
		}
		c.err = c.readSize()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.left == 0 {
		c.needCRLF = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *chunkedReader) readCRLF() error {
	var b [2]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return unexpected(err)
	}
	if b != [2]byte{'\r', '\n'} {
		return errChunked
	}
	return nil
}

func (c *chunkedReader) readSize() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	if err := c.spend(int64(len(line)) + 4); err != nil { // the line's CRLF and the data's
		return err
	}
	if i := strings.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimRight(line, " \t")
	if line == "" || len(line) > 15 {
		return errChunked
	}
	n, err := strconv.ParseUint(line, 16, 64)
	if err != nil {
		return errChunked
	}
	if n > 0 {
		c.left = int64(n)
		c.excess = max(c.excess-16-2*c.left, 0)
		return nil
	}
	// The last chunk: trailer fields up to an empty line, dropped.
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			c.done = true
			return nil
		}
		if err := c.spend(int64(len(line)) + 2); err != nil {
			return err
		}
		if !validTrailer(line) {
			return errChunked
		}
	}
}

func (c *chunkedReader) spend(n int64) error {
	c.excess += n
	if c.excess > maxChunkExcess {
		return badRequest("chunked body with too much framing for its data")
	}
	return nil
}

// validTrailer reports whether line is a header field (no obs-fold), as
// net/http would read it: so that no trailer section ends at a different
// line for it.
func validTrailer(line string) bool {
	name, value, ok := strings.Cut(line, ":")
	return ok && isToken(name) && validFieldValue(value)
}

// readLine reads one CRLF-terminated line of at most maxChunkLine bytes.
func (c *chunkedReader) readLine() (string, error) {
	var b []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLine {
			return "", errChunked
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", unexpected(err)
		}
		break
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", errChunked
	}
	return string(b[:len(b)-2]), nil
}

func (c *chunkedReader) Close() error { return nil }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
