package main

// The mutation endpoints: /set_kv, /mark_for_deletion, /delete_after_ttl.
// Upstream's GET form (query parameters) works as in chitchat-test, for
// scripts; POST takes the same parameters as a form or a JSON object, for
// new clients. Both are refused from another site (trust.go) and for
// reserved keys (reserved.go).

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// Limits of a POST body.
const (
	maxBodyBytes    = 256 << 10        // a 60 KiB value, percent-encoded, fits
	bodyReadTimeout = 10 * time.Second // the whole body must arrive within this
)

// mutationRoutes are the state-changing endpoints, each served on its path
// with and without the trailing slash (upstream's paths end with one, and
// its CLI test calls them without; no redirect, which curl would not
// follow).
func (a *api) mutationRoutes(mux *minihttp.ServeMux) {
	for path, h := range map[string]mutationHandler{
		"/set_kv":            a.setKV,
		"/mark_for_deletion": a.deleteKey(a.srv.Delete),
		"/delete_after_ttl":  a.deleteKey(a.srv.DeleteAfterTTL),
	} {
		mux.HandleFunc(path, a.mutation(h))
		mux.HandleFunc(path+"/{$}", a.mutation(h))
	}
}

// mutationHandler serves a mutation whose parameters were parsed.
type mutationHandler func(w minihttp.ResponseWriter, r *minihttp.Request, params map[string]string)

// mutation guards a state-changing endpoint: GET and POST only, never from
// another site.
func (a *api) mutation(h mutationHandler) minihttp.HandlerFunc {
	return func(w minihttp.ResponseWriter, r *minihttp.Request) {
		if r.Method != minihttp.MethodGet && r.Method != minihttp.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeError(w, minihttp.StatusMethodNotAllowed, r.Method+" does not apply to "+r.URL.Path+": use GET or POST")
			return
		}
		if why := crossSite(r); why != "" {
			a.log.Info("HTTP API: refused a request from another site", "method", r.Method, "path", r.URL.Path,
				"why", why, "remote", r.RemoteAddr)
			writeError(w, minihttp.StatusForbidden, "refused: a request from another site ("+why+
				") cannot change this node's state; call the API from a script, or from /ui")
			return
		}
		params, ok := mutationParams(w, r)
		if !ok {
			return
		}
		h(w, r, params)
	}
}

// mutationParams returns the parameters of a mutation: the query's, then,
// for POST, those of the body (a form, or a JSON object of strings), which
// win. Each parameter's first value counts.
func mutationParams(w minihttp.ResponseWriter, r *minihttp.Request) (map[string]string, bool) {
	// url.Values drops a badly encoded pair silently (r.URL.Query()), which
	// would then be reported as missing.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, minihttp.StatusBadRequest, fmt.Sprintf("malformed query string (%v): percent-encode the key and the value, "+
			"as curl --get --data-urlencode key=K does", err))
		return nil, false
	}
	params := make(map[string]string)
	for k, vs := range query {
		params[k] = vs[0]
	}
	if r.Method != minihttp.MethodPost {
		return params, true
	}
	_ = minihttp.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	r.Body = minihttp.MaxBytesReader(w, r.Body, maxBodyBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]string
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&body); err != nil {
			writeBodyError(w, err, `a JSON object of strings, such as {"key":"k","value":"v"}`)
			return nil, false
		}
		if dec.More() {
			writeError(w, minihttp.StatusBadRequest, "the body holds more than one JSON value")
			return nil, false
		}
		for k, v := range body {
			params[k] = v
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if err := r.ParseMultipartForm(maxBodyBytes); err != nil && !errors.Is(err, minihttp.ErrNotMultipart) {
			writeBodyError(w, err, "a form such as key=k&value=v")
			return nil, false
		}
		for k, vs := range r.PostForm {
			params[k] = vs[0]
		}
	case "":
		// No body: the query's parameters only (curl -X POST 'url?key=k').
	default:
		writeError(w, minihttp.StatusUnsupportedMediaType, fmt.Sprintf(
			"Content-Type %q: send application/json or application/x-www-form-urlencoded", ct))
		return nil, false
	}
	return params, true
}

// writeBodyError answers a body that could not be read as want.
func writeBodyError(w minihttp.ResponseWriter, err error, want string) {
	var tooLarge *minihttp.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, minihttp.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes))
		return
	}
	writeError(w, minihttp.StatusBadRequest, "the body is not "+want)
}

// requireParams checks that params holds every named parameter, or answers
// 400 naming every missing one. An empty value is a value (?value= sets "").
func requireParams(w minihttp.ResponseWriter, r *minihttp.Request, params map[string]string, names ...string) bool {
	var missing []string
	for _, n := range names {
		if _, ok := params[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		writeError(w, minihttp.StatusBadRequest, fmt.Sprintf("missing query parameter(s): %s (usage: %s)",
			strings.Join(missing, ", "), usageOf(r.URL.Path)))
		return false
	}
	return true
}

func usageOf(path string) string {
	path = strings.TrimSuffix(path, "/")
	if path == "/set_kv" {
		return path + "/?key=K&value=V"
	}
	return path + "/?key=K"
}

// refuseKey answers 400 if key is empty and 403 if it is under a reserved
// prefix.
func refuseKey(w minihttp.ResponseWriter, r *minihttp.Request, key string) bool {
	if key == "" {
		writeError(w, minihttp.StatusBadRequest, "the key is empty: give one (usage: "+usageOf(r.URL.Path)+")")
		return true
	}
	prefix, owner, ok := reservedPrefix(key)
	if ok {
		writeError(w, minihttp.StatusForbidden, fmt.Sprintf(
			"key %q is reserved: keys starting with %q are %s, which the HTTP API cannot set or delete", key, prefix, owner))
	}
	return ok
}

// Upstream's answers to a mutation: {"status":true}, and {"status":false}
// when there was nothing to delete.
var (
	statusOK    = []byte(`{"status":true}`)
	statusFalse = []byte(`{"status":false}`)
)

func (a *api) setKV(w minihttp.ResponseWriter, r *minihttp.Request, params map[string]string) {
	if !requireParams(w, r, params, "key", "value") || refuseKey(w, r, params["key"]) {
		return
	}
	if err := a.srv.Set(params["key"], params["value"]); err != nil {
		a.writeMutationError(w, err)
		return
	}
	writeJSON(w, minihttp.StatusOK, statusOK)
}

// deleteKey serves the deletion of one of this node's keys with del:
// Server.Delete for /mark_for_deletion, Server.DeleteAfterTTL for
// /delete_after_ttl (not in upstream's demo: the key stays readable for the
// tombstone grace period, then is deleted everywhere). It answers
// {"status":false} when the key did not exist, as the library reports
// (upstream's demo says true whatever happened).
func (a *api) deleteKey(del func(key string) error) mutationHandler {
	return func(w minihttp.ResponseWriter, r *minihttp.Request, params map[string]string) {
		if !requireParams(w, r, params, "key") || refuseKey(w, r, params["key"]) {
			return
		}
		switch err := del(params["key"]); {
		case errors.Is(err, chitchat.ErrNoSuchKey):
			writeJSON(w, minihttp.StatusOK, statusFalse)
		case err != nil:
			a.writeMutationError(w, err)
		default:
			writeJSON(w, minihttp.StatusOK, statusOK)
		}
	}
}
