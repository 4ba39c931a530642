package main

// Consul's read-only HTTP API over the service catalog. Every catalog and
// health endpoint is a blocking query: with ?index=N the answer waits until
// the part of the catalog the endpoint shows has an index above N, or until
// ?wait= (default 5m, at most 10m, plus up to 1/16 of jitter, as Consul)
// has passed; X-Consul-Index carries the part's index. At most
// maxBlockingQueries wait at once; more get 429 Too Many Requests.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// Blocking queries.
const (
	defaultQueryWait   = 5 * time.Minute
	maxQueryWait       = 10 * time.Minute
	maxBlockingQueries = 256
	// blockingWriteMargin is the time a blocking query's answer has to be
	// written once its wait is over.
	blockingWriteMargin = 10 * time.Second
)

// consulAPI serves Consul's endpoints from a catalog agent.
type consulAPI struct {
	agent    *catalog.Agent
	srv      *chitchat.Server
	blocking chan struct{} // one token per blocking query in progress
	rand     *lockedRand   // wait jitter
}

func newConsulAPI(agent *catalog.Agent, srv *chitchat.Server) *consulAPI {
	return &consulAPI{agent: agent, srv: srv, blocking: make(chan struct{}, maxBlockingQueries), rand: newLockedRand()}
}

func (c *consulAPI) routes(mux *minihttp.ServeMux) {
	mux.HandleFunc("GET /v1/agent/self", c.agentSelf)
	mux.HandleFunc("GET /v1/agent/services", c.agentServices)
	mux.HandleFunc("GET /v1/catalog/datacenters", c.catalogDatacenters)
	mux.HandleFunc("GET /v1/catalog/nodes", c.catalogNodes)
	mux.HandleFunc("GET /v1/catalog/node/{node}", c.catalogNode)
	mux.HandleFunc("GET /v1/catalog/services", c.catalogServices)
	mux.HandleFunc("GET /v1/catalog/service/{service}", c.catalogService)
	mux.HandleFunc("GET /v1/health/service/{service}", c.healthService)
	mux.HandleFunc("GET /v1/internal/ui/nodes", c.uiNodes)
	for _, p := range []string{"/v1/catalog/node/", "/v1/catalog/service/", "/v1/health/service/"} {
		what := "service"
		if p == "/v1/catalog/node/" {
			what = "node"
		}
		mux.HandleFunc("GET "+p+"{$}", func(w minihttp.ResponseWriter, _ *minihttp.Request) {
			consulError(w, minihttp.StatusBadRequest, "Missing "+what+" name")
		})
	}
}

// query is the common part of a read: it validates the parameters Consul
// clients send, blocks if asked to, and writes doc(view) with the index of
// part(view) in X-Consul-Index.
func (c *consulAPI) query(w minihttp.ResponseWriter, r *minihttp.Request, part func(*catalog.View) uint64, doc func(*catalog.View) any) {
	v := c.agent.View()
	q := r.URL.Query()
	if msg, status := c.unsupported(v, q.Get); msg != "" {
		consulError(w, status, msg)
		return
	}
	var index uint64
	if s := q.Get("index"); s != "" {
		var err error
		if index, err = strconv.ParseUint(s, 10, 64); err != nil {
			consulError(w, minihttp.StatusBadRequest, "Invalid index")
			return
		}
	}
	wait := defaultQueryWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			consulError(w, minihttp.StatusBadRequest, "Invalid wait time")
			return
		}
		wait = min(d, maxQueryWait)
	}
	if index > 0 && part(v) <= index {
		select {
		case c.blocking <- struct{}{}:
		default:
			consulError(w, minihttp.StatusTooManyRequests, fmt.Sprintf("too many blocking queries (at most %d): retry later", maxBlockingQueries))
			return
		}
		wait += time.Duration(c.rand.int64N(int64(wait/16) + 1))
		// A server-wide write timeout must not cut the answer short: this
		// response is due after the wait, not before.
		minihttp.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + blockingWriteMargin))
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		v = c.agent.Wait(ctx, index, part)
		cancel()
		<-c.blocking
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(part(v), 10))
	h.Set("X-Consul-KnownLeader", "true") // no leader to lose: every agent answers from its own view
	h.Set("X-Consul-LastContact", "0")
	writeConsul(w, r, doc(v))
}

// unsupported checks the query parameters Consul clients may send: a
// datacenter other than ours cannot be reached, and filters we do not
// implement must not be silently ignored.
func (c *consulAPI) unsupported(v *catalog.View, get func(string) string) (string, int) {
	if dc := get("dc"); dc != "" && dc != v.Datacenter {
		return fmt.Sprintf("No path to datacenter %q", dc), minihttp.StatusInternalServerError
	}
	for _, p := range []string{"filter", "near", "node-meta", "peer", "sameness-group"} {
		if get(p) != "" {
			return fmt.Sprintf("?%s is not supported by this agent", p), minihttp.StatusBadRequest
		}
	}
	for _, p := range []string{"ns", "namespace", "partition", "ap"} {
		if s := get(p); s != "" && s != "default" {
			return fmt.Sprintf("?%s=%s: only the default one exists", p, s), minihttp.StatusBadRequest
		}
	}
	return "", 0
}

// agentSelf is /v1/agent/self: the parts of Consul's document that describe
// this agent (Agent.NodeName reads Config.NodeName).
func (c *consulAPI) agentSelf(w minihttp.ResponseWriter, r *minihttp.Request) {
	v := c.agent.View()
	self := c.srv.Self()
	member := member{Name: self.Name, Addr: self.Addr.Addr().String(), Port: self.Addr.Port(), Tags: map[string]string{}, Status: memberAlive}
	if ns, ok := c.srv.NodeState(self); ok {
		for k, kv := range ns.KeyValues() {
			member.Tags[k] = kv.Value
		}
	}
	nodeID := ""
	if n, ok := v.SelfNode(); ok {
		nodeID = nodeUUID(n)
	}
	writeConsul(w, r, map[string]any{
		"Config": map[string]any{
			"Datacenter": v.Datacenter,
			"NodeName":   self.Name,
			"NodeID":     nodeID,
			"Revision":   "",
			"Server":     false,
			"Version":    "chitchat-go",
		},
		"Member": member,
		"Meta":   map[string]string{},
		"Stats": map[string]any{
			"catalog": c.agent.Stats(),
		},
	})
}

// agentServices is /v1/agent/services: the services registered on this
// node, by ID.
func (c *consulAPI) agentServices(w minihttp.ResponseWriter, r *minihttp.Request) {
	v := c.agent.View()
	out := map[string]agentServiceDoc{}
	for _, s := range c.agent.Services() {
		out[s.ID] = renderService(v, &catalog.Instance{Service: s})
	}
	writeConsul(w, r, out)
}

func (c *consulAPI) catalogDatacenters(w minihttp.ResponseWriter, r *minihttp.Request) {
	writeConsul(w, r, []string{c.agent.View().Datacenter})
}

func (c *consulAPI) catalogNodes(w minihttp.ResponseWriter, r *minihttp.Request) {
	c.query(w, r, func(v *catalog.View) uint64 { return v.NodesIndex }, func(v *catalog.View) any {
		out := make([]nodeDoc, 0, len(v.Nodes))
		for _, n := range v.Nodes {
			out = append(out, renderNode(v, n))
		}
		return out
	})
}

// catalogNode is /v1/catalog/node/<name>: null for an unknown node, as
// Consul.
func (c *consulAPI) catalogNode(w minihttp.ResponseWriter, r *minihttp.Request) {
	name := r.PathValue("node")
	c.query(w, r, func(v *catalog.View) uint64 { return v.NodeIndex(name) }, func(v *catalog.View) any {
		n, ok := v.Node(name)
		if !ok {
			return nil
		}
		return renderCatalogNode(v, n)
	})
}

func (c *consulAPI) catalogServices(w minihttp.ResponseWriter, r *minihttp.Request) {
	c.query(w, r, func(v *catalog.View) uint64 { return v.ServicesIndex }, func(v *catalog.View) any {
		return renderServices(v)
	})
}

// catalogService is /v1/catalog/service/<name>: every instance, whatever
// its health, with every ?tag.
func (c *consulAPI) catalogService(w minihttp.ResponseWriter, r *minihttp.Request) {
	name, tags := r.PathValue("service"), r.URL.Query()["tag"]
	c.query(w, r, func(v *catalog.View) uint64 { return v.ServiceIndex(name, false) }, func(v *catalog.View) any {
		out := []catalogServiceDoc{}
		for _, in := range v.Service(name).Select(tags, false) {
			out = append(out, renderCatalogService(v, in))
		}
		return out
	})
}

// healthService is /v1/health/service/<name>: every instance with every
// ?tag and its checks (its node's, then its own); only passing ones with
// ?passing.
func (c *consulAPI) healthService(w minihttp.ResponseWriter, r *minihttp.Request) {
	name, q := r.PathValue("service"), r.URL.Query()
	passing := false
	if q.Has("passing") {
		s := q.Get("passing")
		b, err := strconv.ParseBool(s)
		if s != "" && err != nil {
			consulError(w, minihttp.StatusBadRequest, "Invalid value for ?passing")
			return
		}
		passing = s == "" || b
	}
	tags := q["tag"]
	c.query(w, r, func(v *catalog.View) uint64 { return v.ServiceIndex(name, true) }, func(v *catalog.View) any {
		out := []serviceEntryDoc{}
		for _, in := range v.Service(name).Select(tags, passing) {
			out = append(out, renderServiceEntry(v, in))
		}
		return out
	})
}

// uiNodes is Consul's /v1/internal/ui/nodes: every node with its services
// and checks; the /ui page follows it with blocking queries.
func (c *consulAPI) uiNodes(w minihttp.ResponseWriter, r *minihttp.Request) {
	c.query(w, r, func(v *catalog.View) uint64 { return v.Index }, func(v *catalog.View) any {
		out := make([]uiNodeDoc, 0, len(v.Nodes))
		for _, n := range v.Nodes {
			out = append(out, renderUINode(v, n))
		}
		return out
	})
}

// writeConsul answers 200 with v as JSON: compact as Consul, indented with
// ?pretty.
func writeConsul(w minihttp.ResponseWriter, r *minihttp.Request, v any) {
	var b []byte
	var err error
	if r.URL.Query().Has("pretty") {
		b, err = json.MarshalIndent(v, "", "    ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		consulError(w, minihttp.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, minihttp.StatusOK, append(b, '\n'))
}

// consulError answers as Consul does: the status and a plain-text message.
func consulError(w minihttp.ResponseWriter, status int, msg string) {
	writeBody(w, status, "text/plain; charset=utf-8", []byte(msg+"\n"))
}
