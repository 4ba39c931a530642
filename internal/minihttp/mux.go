package minihttp

import (
	"net/url"
	"path"
	"slices"
	"strings"
)

// ServeMux routes requests by method and path, with net/http's pattern
// syntax restricted to what the demo uses: "[METHOD ]/seg/…", where a
// segment is a literal or a {name} wildcard matching one whole segment,
// and a trailing "/{$}" matches a trailing slash exactly. A GET pattern
// also answers HEAD. Of the patterns that match, the one with the most
// literal segments wins; at equal counts, the one of the request's method,
// then GET (for a HEAD), then one without a method. A path that is not clean (".", "..", "//") is
// redirected to its clean form; a path that matches with another method
// is answered 405 with Allow, any other 404.
type ServeMux struct {
	routes []route
}

type route struct {
	method   string   // "" matches every method
	segs     []string // literals, or "{name}"
	trailing bool     // the path ends with a slash
	literals int
	h        Handler
}

// NewServeMux returns an empty mux.
func NewServeMux() *ServeMux { return &ServeMux{} }

// Handle registers h for pattern. It panics on a pattern it cannot parse
// or one already registered: both are programming errors.
func (m *ServeMux) Handle(pattern string, h Handler) {
	rt := route{h: h}
	p := pattern
	if method, rest, ok := strings.Cut(pattern, " "); ok {
		rt.method, p = method, strings.TrimLeft(rest, " ")
		if !isToken(method) {
			panic("minihttp: bad method in pattern " + pattern)
		}
	}
	if !strings.HasPrefix(p, "/") {
		panic("minihttp: pattern " + pattern + " does not start with a path")
	}
	if strings.HasSuffix(p, "/{$}") {
		rt.trailing = true
		p = strings.TrimSuffix(p, "{$}")
	} else if strings.HasSuffix(p, "/") {
		panic("minihttp: pattern " + pattern + ": subtree patterns are not supported; end it with {$}")
	}
	p = strings.Trim(p, "/")
	if p != "" {
		rt.segs = strings.Split(p, "/")
	}
	for _, s := range rt.segs {
		switch {
		case s == "":
			panic("minihttp: pattern " + pattern + " has an empty segment")
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			if name := s[1 : len(s)-1]; name == "" || name == "$" || strings.ContainsAny(name, "{}.") {
				panic("minihttp: pattern " + pattern + ": bad wildcard " + s)
			}
		case strings.ContainsAny(s, "{}"):
			panic("minihttp: pattern " + pattern + ": a wildcard must be a whole segment")
		default:
			rt.literals++
		}
	}
	for _, o := range m.routes {
		if o.method == rt.method && o.trailing == rt.trailing && slices.EqualFunc(o.segs, rt.segs, sameSegment) {
			panic("minihttp: pattern " + pattern + " registered twice")
		}
	}
	m.routes = append(m.routes, rt)
}

// HandleFunc registers f for pattern.
func (m *ServeMux) HandleFunc(pattern string, f func(ResponseWriter, *Request)) {
	m.Handle(pattern, HandlerFunc(f))
}

func (m *ServeMux) ServeHTTP(w ResponseWriter, r *Request) {
	escaped := r.URL.EscapedPath()
	if escaped == "" {
		escaped = "/"
	}
	if clean := cleanPath(escaped); clean != escaped {
		u := &url.URL{Path: clean, RawQuery: r.URL.RawQuery}
		if p, err := url.PathUnescape(clean); err == nil {
			u = &url.URL{Path: p, RawPath: clean, RawQuery: r.URL.RawQuery}
		}
		w.Header().Set("Location", u.String())
		w.WriteHeader(StatusMovedPermanently)
		return
	}
	trailing := strings.HasSuffix(escaped, "/")
	var segs []string
	if p := strings.Trim(escaped, "/"); p != "" {
		segs = strings.Split(p, "/")
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			notFound(w)
			return
		}
		segs[i] = u
	}

	var best *route
	var allow []string
	for i := range m.routes {
		rt := &m.routes[i]
		if !rt.matchPath(segs, trailing) {
			continue
		}
		if !rt.matchMethod(r.Method) {
			allow = append(allow, rt.method)
			if rt.method == MethodGet {
				allow = append(allow, MethodHead)
			}
			continue
		}
		if best == nil || rt.literals > best.literals || (rt.literals == best.literals && rt.methodRank(r.Method) > best.methodRank(r.Method)) {
			best = rt
		}
	}
	if best == nil {
		if len(allow) > 0 {
			slices.Sort(allow)
			w.Header().Set("Allow", strings.Join(slices.Compact(allow), ", "))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(StatusMethodNotAllowed)
			w.Write([]byte("Method Not Allowed\n"))
			return
		}
		notFound(w)
		return
	}
	for i, s := range best.segs {
		if strings.HasPrefix(s, "{") {
			r.SetPathValue(s[1:len(s)-1], segs[i])
		}
	}
	best.h.ServeHTTP(w, r)
}

func (rt *route) matchPath(segs []string, trailing bool) bool {
	if len(segs) != len(rt.segs) || trailing != rt.trailing && len(segs) > 0 {
		return false
	}
	if len(segs) == 0 && !trailing && !rt.trailing {
		return false
	}
	for i, s := range rt.segs {
		if strings.HasPrefix(s, "{") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if s != segs[i] {
			return false
		}
	}
	return true
}

// methodRank orders the routes whose method matches m: its own method
// first, then GET for a HEAD, then any method.
func (rt *route) methodRank(m string) int {
	switch rt.method {
	case m:
		return 2
	case "":
		return 0
	}
	return 1
}

// sameSegment reports whether two segments of patterns match the same
// segments of paths: equal literals, or wildcards of any names.
func sameSegment(a, b string) bool {
	return a == b || strings.HasPrefix(a, "{") && strings.HasPrefix(b, "{")
}

func (rt *route) matchMethod(m string) bool {
	return rt.method == "" || rt.method == m || (rt.method == MethodGet && m == MethodHead)
}

func notFound(w ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(StatusNotFound)
	w.Write([]byte("404 page not found\n"))
}

// cleanPath is p without ".", ".." and repeated slashes, keeping a
// trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
