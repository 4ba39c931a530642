package main

import (
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// api serves the node's HTTP endpoints. Upstream's chitchat-test endpoints
// (/, /set_kv/, /mark_for_deletion/) answer exactly as upstream's, so that
// scripts written for it work unchanged.
type api struct {
	srv     *chitchat.Server
	cfg     chitchat.Config // what srv was started with: its keyring (/v1/keyring), its gossip interval (/events)
	mesh    *overlayMesh    // nil without --overlay
	metrics minihttp.Handler
	consul  *consulAPI   // Consul's catalog endpoints (consul.go); nil: not served
	log     *slog.Logger // what answers do not say (internal errors) goes here
	hosts   hostPolicy   // the Host headers served (trust.go)
	hub     *eventHub    // the /events streams (events.go)
}

// newAPI serves srv, started with cfg, with the --http_* options o; mesh is
// nil without --overlay.
func newAPI(srv *chitchat.Server, cfg chitchat.Config, mesh *overlayMesh, o httpOptions) *api {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &api{srv: srv, cfg: cfg, mesh: mesh, metrics: metricsHandler(srv, log, overlayCollectors(mesh)...), log: log,
		hosts: newHostPolicy(cfg.ListenAddr, cfg.ID.Addr, o.allowedHosts),
		hub:   newAPIEventHub(srv, cfg, o.maxEventStreams, log)}
}

func (a *api) routes() minihttp.Handler {
	mux := minihttp.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	a.mutationRoutes(mux)
	mux.HandleFunc("GET /events", a.events)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /metrics", a.metrics)
	mux.HandleFunc("GET /v1/agent/members", a.members)
	mux.HandleFunc("GET /v1/keyring", a.keyring)
	mux.HandleFunc("GET /overlay/peers", a.overlayPeers)
	mux.HandleFunc("GET /overlay/wg-quick", a.overlayWGQuick)
	mux.HandleFunc("GET /ui", a.serveUI)
	mux.HandleFunc("GET /ui/{$}", a.serveUI)
	if a.consul != nil {
		a.consul.routes(mux)
	}
	return secureHeaders(a.hosts.checkHost(mux, a.log))
}

// The document of GET /: upstream's serde serialization of
// chitchat's state, field for field, plus left_nodes. Structs keep the
// field order; key_values is a map because encoding/json writes map keys
// sorted, which is upstream's BTreeMap order.
type (
	stateDoc struct {
		ClusterID    string          `json:"cluster_id"`
		ClusterState clusterStateDoc `json:"cluster_state"`
		LiveNodes    []chitchatIDDoc `json:"live_nodes"`
		DeadNodes    []chitchatIDDoc `json:"dead_nodes"`
		// LeftNodes is not in upstream's document (chitchat v0.10.1 has no
		// graceful leave): the nodes that left (Server.Leave), neither
		// live nor dead, until garbage collected. It comes last, so that
		// readers of upstream's fields see them where they expect them;
		// serde readers ignore unknown fields by default.
		LeftNodes []chitchatIDDoc `json:"left_nodes"`
	}
	clusterStateDoc struct {
		NodeStates []nodeStateDoc `json:"node_states"`
		SeedAddrs  []string       `json:"seed_addrs"`
	}
	nodeStateDoc struct {
		ChitchatID    chitchatIDDoc              `json:"chitchat_id"`
		Heartbeat     uint64                     `json:"heartbeat"`
		KeyValues     map[string]versionedValDoc `json:"key_values"`
		MaxVersion    uint64                     `json:"max_version"`
		LastGCVersion uint64                     `json:"last_gc_version"`
	}
	chitchatIDDoc struct {
		NodeID              string `json:"node_id"`
		GenerationID        uint64 `json:"generation_id"`
		GossipAdvertiseAddr string `json:"gossip_advertise_addr"`
	}
	versionedValDoc struct {
		Value   string `json:"value"`
		Version uint64 `json:"version"`
		Status  string `json:"status"` // "Set", "Delete" or "DeleteAfterTtl"
	}
)

// document renders a snapshot. Every list is non-nil: upstream writes []
// for an empty list, never null.
func document(s chitchat.Snapshot) stateDoc {
	d := stateDoc{
		ClusterID: s.ClusterID,
		ClusterState: clusterStateDoc{
			NodeStates: make([]nodeStateDoc, 0, len(s.Nodes)),
			SeedAddrs:  make([]string, 0, len(s.Seeds)),
		},
		LiveNodes: idDocs(s.Live),
		DeadNodes: idDocs(s.Dead),
		LeftNodes: idDocs(s.Left),
	}
	for _, ns := range s.Nodes {
		kvs := make(map[string]versionedValDoc)
		for k, v := range ns.AllKeyValues() {
			kvs[k] = versionedValDoc{Value: v.Value, Version: v.Version, Status: v.Status.String()}
		}
		d.ClusterState.NodeStates = append(d.ClusterState.NodeStates, nodeStateDoc{
			ChitchatID:    idDoc(ns.ID()),
			Heartbeat:     ns.Heartbeat(),
			KeyValues:     kvs,
			MaxVersion:    ns.MaxVersion(),
			LastGCVersion: ns.LastGCVersion(),
		})
	}
	for _, a := range s.Seeds {
		d.ClusterState.SeedAddrs = append(d.ClusterState.SeedAddrs, a.String())
	}
	return d
}

func idDoc(id chitchat.NodeID) chitchatIDDoc {
	// netip.AddrPort writes IPv6 as "[::1]:port", as Rust's SocketAddr.
	return chitchatIDDoc{NodeID: id.Name, GenerationID: id.Generation, GossipAdvertiseAddr: id.Addr.String()}
}

func idDocs(ids []chitchat.NodeID) []chitchatIDDoc {
	out := make([]chitchatIDDoc, 0, len(ids))
	for _, id := range ids {
		out = append(out, idDoc(id))
	}
	return out
}

// index serves the cluster state, pretty-printed with two spaces as
// upstream (which answers text/plain).
func (a *api) index(w minihttp.ResponseWriter, _ *minihttp.Request) {
	a.writeIndented(w, "text/plain; charset=utf-8", document(a.srv.Snapshot()))
}

// healthz answers 200 while the gossip server runs, 503 once it stopped
// (why is in the node's log, not in the answer).
func (a *api) healthz(w minihttp.ResponseWriter, _ *minihttp.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	select {
	case <-a.srv.Done():
		w.WriteHeader(minihttp.StatusServiceUnavailable)
		w.Write([]byte("gossip server stopped\n"))
	default:
		w.Write([]byte("ok\n"))
	}
}

// writeMutationError answers a failed mutation in the API's own words: the
// library's errors are for the node's log, not for any client to read.
func (a *api) writeMutationError(w minihttp.ResponseWriter, err error) {
	switch {
	case errors.Is(err, chitchat.ErrValueTooLarge):
		writeError(w, minihttp.StatusRequestEntityTooLarge, "the key and value are too large to fit in a gossip datagram")
	case errors.Is(err, chitchat.ErrInvalidUTF8):
		writeError(w, minihttp.StatusBadRequest, "the key and the value must be valid UTF-8")
	case errors.Is(err, chitchat.ErrTooManyKeys):
		writeError(w, minihttp.StatusInsufficientStorage, "this node holds as many keys as it may: delete some first")
	case errors.Is(err, chitchat.ErrClosed):
		writeError(w, minihttp.StatusServiceUnavailable, "the gossip server is stopped")
	default:
		a.internalError(w, "mutation failed", err)
	}
}

// internalError answers 500 without details, and logs err.
func (a *api) internalError(w minihttp.ResponseWriter, what string, err error) {
	a.log.Error("HTTP API: "+what, "err", err)
	writeError(w, minihttp.StatusInternalServerError, "internal error (see the node's log)")
}

// errorDoc is the body of every error answer.
type errorDoc struct {
	Error string `json:"error"`
}

func writeError(w minihttp.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(errorDoc{Error: msg})
	writeJSON(w, status, b)
}

func writeJSON(w minihttp.ResponseWriter, status int, b []byte) {
	writeBody(w, status, jsonContentType, b)
}

const jsonContentType = "application/json; charset=utf-8"

// writeIndented answers 200 with v as JSON indented by two spaces
// (upstream's pretty-printing), with the given Content-Type.
func (a *api) writeIndented(w minihttp.ResponseWriter, contentType string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		a.internalError(w, "encoding JSON", err)
		return
	}
	writeBody(w, minihttp.StatusOK, contentType, b)
}

func writeBody(w minihttp.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}
