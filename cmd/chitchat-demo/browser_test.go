package main

// /ui in a real headless browser, driven over the Chrome DevTools Protocol
// on a pipe (--remote-debugging-pipe: NUL-terminated JSON messages on file
// descriptors 3 and 4), so no WebSocket client or dependency is needed. The
// test waits on the page's own "chitchat:render" event, never on a timer.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
	"github.com/gossipkit/chitchat-go/internal/minihttp/minihttptest"
)

// findBrowser returns a Chromium-like browser on PATH, or "".
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// /ui loads, lists the live nodes with their keys, shows a node as left
// once it is stopped (SIGTERM) and as dead once it is killed. With
// UPDATE_SCREENSHOT=1 the final page is saved as docs/ui.png (the README's
// screenshot).
func TestUIInBrowser(t *testing.T) {
	t.Parallel()
	browserPath := findBrowser()
	if browserPath == "" {
		t.Skip("no headless browser: none of chromium, chromium-browser, google-chrome is on PATH; " +
			"install one (Debian: apt-get install chromium) to test /ui in a browser")
	}
	ctx := testContext(t)
	nodes := startNodes(ctx, t, freePorts(t, 4), 4, func(int) []string {
		return []string{"--interval_ms", "100", "--initial_interval", "1s"}
	})
	// Some keys, a deleted one and one deleted after a TTL, for the page to show.
	for _, q := range []struct {
		node int
		path string
	}{
		{0, "/set_kv/?key=role&value=gateway"}, {0, "/set_kv/?key=zone&value=eu-west-1a"},
		{1, "/set_kv/?key=role&value=indexer"}, {1, "/set_kv/?key=some_key&value=some_value"},
		{2, "/set_kv/?key=role&value=searcher"}, {2, "/set_kv/?key=draining&value=true"},
		{2, "/mark_for_deletion/?key=draining"},
		{3, "/set_kv/?key=role&value=searcher"}, {3, "/set_kv/?key=lease&value=7f3a"},
		{3, "/delete_after_ttl/?key=lease"},
		{1, "/set_kv/?key=blob&value=" + strings.Repeat("0123456789", 500)},
	} {
		mustStatusTrue(ctx, t, nodes[q.node].url+q.path)
	}

	b := startBrowser(ctx, t, browserPath)
	page := b.open(ctx, t, nodes[0].url+"/ui")
	cards := page.waitFor(ctx, t, "4 live nodes with their keys", `cards =>
		cards.length === 4 &&
		cards.every((c, i) => c.node === "node_" + i && c.status === "live") &&
		cards[0].self && !cards[1].self &&
		cards.map(c => c.keys.length).join() === "2,3,2,2"`)
	t.Logf("page shows %s", cards)

	// A long value shows its first 96 characters, the whole on hover
	// (title); a click unfolds it, another folds it.
	lengths, err := page.eval(ctx, `(() => {
		const td = document.querySelectorAll(".card")[1].querySelector('tr[data-key="blob"] td.val');
		const got = [td.textContent.length, td.title.length];
		td.click(); got.push(td.textContent.length);
		td.click(); got.push(td.textContent.length);
		return got.join();
	})()`)
	if want := "97,5000,5000,97"; err != nil || lengths != want {
		t.Errorf("long value: shown, title, unfolded, folded lengths = %q (%v), want %s", lengths, err, want)
	}

	// The page's own form sets a key: a same-origin POST, which the API
	// serves.
	if _, err := page.eval(ctx, `document.getElementById("key").value = "via_ui";
		document.getElementById("value").value = "set from the page";
		document.getElementById("setForm").requestSubmit()`); err != nil {
		t.Fatal(err)
	}
	page.waitFor(ctx, t, "node_0 with the key set from the form", `cards => cards[0].keys.includes("via_ui")`)
	// A page of another site (served here as http://localhost:port, while
	// the node is http://127.0.0.1:port) cannot change node_0's state, by
	// GET or by a form POST, though the browser sends both (no-cors: the
	// page cannot read the answers, but they would run).
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>some other site</title>")
	}))
	defer attacker.Close()
	other := b.open(ctx, t, strings.Replace(attacker.URL, "127.0.0.1", "localhost", 1))
	for _, call := range []string{
		`fetch("` + nodes[0].url + `/set_kv/?key=evil_get&value=1", {mode: "no-cors"})`,
		`fetch("` + nodes[0].url + `/set_kv/", {mode: "no-cors", method: "POST",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "key=evil_post&value=1"})`,
		`fetch("` + nodes[0].url + `/mark_for_deletion/?key=via_ui", {mode: "no-cors"})`,
	} {
		// The answer is opaque, or blocked (Cross-Origin-Resource-Policy);
		// either way the request was sent, and node_0 logs its refusal.
		if got, err := other.eval(ctx, call+`.then(r => r.type, e => "blocked")`); err != nil || (got != "opaque" && got != "blocked") {
			t.Fatalf("%s from another site = %q, %v; want an opaque or a blocked answer", call, got, err)
		}
	}
	refused := nodes[0].stderr.waitCount(ctx, t, regexp.MustCompile(`msg="HTTP API: refused a request from another site".*why="Sec-Fetch-Site: cross-site"`), 3)
	t.Logf("node_0 logged: %s", refused[0])
	for _, ns := range getState(ctx, t, nodes[0].url).ClusterState.NodeStates {
		if ns.ChitchatID.NodeID != "node_0" {
			continue
		}
		if v := ns.KeyValues["via_ui"]; v.Status != "Set" || v.Value != "set from the page" {
			t.Errorf("node_0's via_ui = %+v after another page tried to delete it, want set from the page", v)
		}
		for _, k := range []string{"evil_get", "evil_post"} {
			if v, ok := ns.KeyValues[k]; ok {
				t.Errorf("another page set %s=%+v on node_0", k, v)
			}
		}
	}

	nodes[2].stop(ctx, syscall.SIGTERM)
	cards = page.waitFor(ctx, t, "node_2 left, the others live", `cards =>
		cards.length === 4 && cards[2].status === "left" && cards[2].badge === "left" &&
		[0, 1, 3].every(i => cards[i].status === "live")`)
	// The leave marker (an internal key) is in the state, not on the page.
	if cards != "" && strings.Contains(cards, "__chitchat.") {
		t.Errorf("the page shows the library's internal keys: %s", cards)
	}
	t.Logf("page shows %s", cards)

	nodes[3].cmd.Process.Kill()
	nodes[3].wait(ctx)
	cards = page.waitFor(ctx, t, "node_3 dead, node_2 left, the others live", `cards =>
		cards.length === 4 && cards[3].status === "dead" && cards[2].status === "left" &&
		cards.slice(0, 2).every(c => c.status === "live")`)
	t.Logf("page shows %s", cards)
	if stats, err := page.eval(ctx, `["nLive", "nDead", "nLeft"].map(id => document.getElementById(id).textContent).join()`); err != nil || stats != "2,1,1" {
		t.Errorf("live, dead, left counts = %q (%v), want 2,1,1", stats, err)
	}

	// The table view shows the same nodes, one line each; the status
	// filter and the search narrow it down.
	checkViews(ctx, t, page, []viewCheck{
		{"table", `document.querySelector('#viewSeg [data-view="table"]').click()`,
			"node_0:live,node_1:live,node_2:left,node_3:dead"},
		{"dead only", `document.querySelector('#statusSeg [data-status="dead"]').click()`, "node_3:dead"},
		{"left only", `document.querySelector('#statusSeg [data-status="left"]').click()`, "node_2:left"},
		{"all, searching a value", `document.querySelector('#statusSeg [data-status="all"]').click(); search("SEARCHER")`,
			"node_2:left,node_3:dead"},
		{"searching a key", `search("some_key")`, "node_1:live"},
		{"searching an address", `search(":` + nodes[0].url[strings.LastIndex(nodes[0].url, ":")+1:] + `")`, "node_0:live"},
		{"live, no search", `search(""); document.querySelector('#statusSeg [data-status="live"]').click()`, "node_0:live,node_1:live"},
		{"cards, live", `document.querySelector('#viewSeg [data-view="cards"]').click()`, "node_0:live,node_1:live"},
		{"cards, all", `document.querySelector('#statusSeg [data-status="all"]').click()`,
			"node_0:live,node_1:live,node_2:left,node_3:dead"},
	})
	// The time series fill from the stream, one sample a second.
	series := page.waitFor(ctx, t, "three samples in each time series", `() =>
		["sparkLive", "sparkBytes"].every(id => +document.getElementById(id).dataset.samples >= 3) &&
		document.getElementById("bps").textContent.endsWith("/s")`)
	t.Logf("time series: %s", series)

	png := page.screenshot(ctx, t)
	shot := filepath.Join(t.TempDir(), "ui.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		shot = filepath.Join("..", "..", "docs", "ui.png")
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}

// /ui draws the cluster from the state written in the page, before any
// event: the DOM a headless browser dumps once the page has loaded shows
// the node and its key.
func TestUIDrawsBeforeEvents(t *testing.T) {
	t.Parallel()
	browserPath := findBrowser()
	if browserPath == "" {
		t.Skip("no headless browser (see TestUIInBrowser)")
	}
	srv, _ := testNode(t)
	srv.Set("role", "gateway")
	// /events sends nothing (a slow network): only the state written in
	// the page can draw the node.
	routes := newAPI(srv, testConfig(), nil, testHTTPOptions()).routes()
	ts := minihttptest.NewServer(minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(minihttp.StatusOK)
			minihttp.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		routes.ServeHTTP(w, r)
	}))
	defer ts.Close()
	profile, err := os.MkdirTemp("", "chitchat-demo-chromium-") // see startBrowser
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	cmd := exec.CommandContext(testContext(t), browserPath, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+profile, "--dump-dom", ts.URL+"/ui")
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v", browserPath, err)
	}
	for _, want := range []string{`data-node="node_0"`, `data-status="live"`, `data-key="role"`, `id="nLive">1<`} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("the loaded page has no %s:\n%.2000s", want, dom)
		}
	}
}

// viewCheck is a step of checkViews: run JavaScript (with search(text)
// typing into the search box), then the visible nodes must be want.
type viewCheck struct{ name, js, want string }

// visibleJS lists the visible nodes of the current view as node:status.
const visibleJS = `(() => {
	const view = document.body.dataset.view;
	const items = view === "table" ? document.querySelectorAll("#nodeRows tr") : document.querySelectorAll(".card");
	return [...items].filter(e => !e.hidden).map(e => e.dataset.node + ":" + e.dataset.status).join();
})()`

func checkViews(ctx context.Context, t *testing.T, p *page, steps []viewCheck) {
	t.Helper()
	const search = `const search = (text) => { const s = document.getElementById("search"); s.value = text; s.dispatchEvent(new Event("input")); };`
	for _, st := range steps {
		got, err := p.eval(ctx, `(() => { `+search+st.js+`; return `+visibleJS+`; })()`)
		if err != nil || got != st.want {
			t.Errorf("%s: the page shows %q (%v), want %q", st.name, got, err, st.want)
		}
	}
}

// /ui with a hundred nodes: the table is the default view, one short line
// per node; the status filter and the search work at that size. The state
// is made up and written in the page; /events sends nothing.
func TestUIHundredNodes(t *testing.T) {
	t.Parallel()
	browserPath := findBrowser()
	if browserPath == "" {
		t.Skip("no headless browser (see TestUIInBrowser)")
	}
	ctx := testContext(t)
	doc := hundredNodeDoc()
	a := &api{log: slog.New(slog.DiscardHandler)}
	ts := minihttptest.NewServer(minihttp.HandlerFunc(func(w minihttp.ResponseWriter, r *minihttp.Request) {
		if r.URL.Path == "/ui" {
			a.writeUIPage(w, doc)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream") // /events: nothing until the test ends
		w.WriteHeader(minihttp.StatusOK)
		minihttp.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-ctx.Done():
		}
	}))
	t.Cleanup(ts.Close) // after the browser's cleanup, registered below
	b := startBrowser(ctx, t, browserPath)
	page := b.open(ctx, t, ts.URL+"/ui")
	summary, err := page.eval(ctx, `(() => {
		const rows = [...document.querySelectorAll("#nodeRows tr")];
		const heights = rows.map(r => r.getBoundingClientRect().height);
		return JSON.stringify({view: document.body.dataset.view, rows: rows.length,
			visible: rows.filter(r => !r.hidden).length, tallest: Math.max(...heights), shown: document.getElementById("shown").textContent});
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		View          string
		Rows, Visible int
		Tallest       float64
		Shown         string
	}
	if err := json.Unmarshal([]byte(summary), &got); err != nil {
		t.Fatalf("%v: %s", err, summary)
	}
	if got.View != "table" || got.Rows != 100 || got.Visible != 100 || got.Tallest > 36 || got.Shown != "100 nodes" {
		t.Errorf("/ui with 100 nodes shows %s; want the table, 100 visible rows of at most 36 px, \"100 nodes\"", summary)
	}
	count := func(js string) string {
		n, err := page.eval(ctx, `(() => { `+js+`; return document.getElementById("shown").textContent + " " +
			[...document.querySelectorAll("#nodeRows tr")].filter(r => !r.hidden).map(r => r.dataset.status).filter((s, i, a) => a.indexOf(s) === i).join(); })()`)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tt := range []struct{ js, want string }{
		{`document.querySelector('#statusSeg [data-status="live"]').click()`, "showing 90 of 100 live"},
		{`document.querySelector('#statusSeg [data-status="dead"]').click()`, "showing 6 of 100 dead"},
		{`document.querySelector('#statusSeg [data-status="left"]').click()`, "showing 4 of 100 left"},
		{`document.querySelector('#statusSeg [data-status="all"]').click();
			const s = document.getElementById("search"); s.value = "eu-west-1b"; s.dispatchEvent(new Event("input"))`, "showing 33 of 100 live,dead,left"},
	} {
		if got := count(tt.js); got != tt.want {
			t.Errorf("%s: shows %q, want %q", tt.js, got, tt.want)
		}
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		count(`const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input"))`)
		png := page.screenshot(ctx, t)
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "ui-100.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hundredNodeDoc is the state of a made-up cluster of 100 nodes: 90 live,
// 6 dead, 4 left; node i is in zone eu-west-1[abc] by i mod 3.
func hundredNodeDoc() stateDoc {
	d := stateDoc{ClusterID: "hundred", ClusterState: clusterStateDoc{SeedAddrs: []string{"10.1.0.0:7280"}},
		LiveNodes: []chitchatIDDoc{}, DeadNodes: []chitchatIDDoc{}, LeftNodes: []chitchatIDDoc{}}
	roles := []string{"indexer", "searcher", "control-plane", "janitor"}
	for i := range 100 {
		id := chitchatIDDoc{NodeID: fmt.Sprintf("node_%03d", i), GenerationID: 1795000000000000 + uint64(i),
			GossipAdvertiseAddr: fmt.Sprintf("10.1.%d.%d:7280", i/250, i%250)}
		kvs := map[string]versionedValDoc{
			"role":          {Value: roles[i%len(roles)], Version: 1, Status: "Set"},
			"zone":          {Value: "eu-west-1" + string(rune('a'+i%3)), Version: 2, Status: "Set"},
			"grpc_endpoint": {Value: fmt.Sprintf("10.1.%d.%d:7281", i/250, i%250), Version: 3, Status: "Set"},
		}
		switch {
		case i >= 96:
			d.LeftNodes = append(d.LeftNodes, id)
			kvs[chitchat.LeftKey] = versionedValDoc{Value: "true", Version: 4, Status: "Set"}
		case i >= 90:
			d.DeadNodes = append(d.DeadNodes, id)
		default:
			d.LiveNodes = append(d.LiveNodes, id)
		}
		d.ClusterState.NodeStates = append(d.ClusterState.NodeStates, nodeStateDoc{ChitchatID: id, Heartbeat: uint64(1000 + i),
			KeyValues: kvs, MaxVersion: uint64(len(kvs))})
	}
	return d
}

// browser is a headless Chromium driven over --remote-debugging-pipe.
type browser struct {
	cmd    *exec.Cmd
	w      *os.File // CDP messages to the browser (its fd 3)
	stderr *syncBuffer

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
	waiters map[string][]chan cdpMessage // "sessionId method" -> one-shot waiters
	closed  chan struct{}                // the browser's end of the pipe closed
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func startBrowser(ctx context.Context, t *testing.T, path string) *browser {
	t.Helper()
	// Not t.TempDir: the browser's helper processes may still write there
	// while it is removed, which t.TempDir reports as an error.
	profile, err := os.MkdirTemp("", "chitchat-demo-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	toBrowser, ourW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourR, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{w: ourW, stderr: &syncBuffer{}, pending: make(map[int]chan cdpMessage),
		waiters: make(map[string][]chan cdpMessage), closed: make(chan struct{})}
	b.cmd = exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
		"--window-size=1280,900", "--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	b.cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser} // fds 3 and 4
	b.cmd.Stderr = b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to kill its helpers too
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	exited := make(chan struct{})
	go func() {
		b.cmd.Wait()
		close(exited)
	}()
	go b.readLoop(ourR)
	t.Cleanup(func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		b.call(closeCtx, "", "Browser.close", nil)
		select {
		case <-exited:
		case <-closeCtx.Done():
		}
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) // the whole process group
		<-exited
		ourW.Close()
		os.RemoveAll(profile)
		if t.Failed() {
			t.Logf("--- browser stderr (last 30 lines):\n%s", b.stderr.tail(30))
		}
	})
	// The first answer tells that the browser is up.
	if _, err := b.call(ctx, "", "Browser.getVersion", nil); err != nil {
		t.Fatalf("browser did not answer: %v", err)
	}
	return b
}

func (b *browser) readLoop(r *os.File) {
	defer close(b.closed)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else {
			key := m.SessionID + " " + m.Method
			for _, ch := range b.waiters[key] {
				ch <- m
			}
			delete(b.waiters, key)
		}
		b.mu.Unlock()
	}
}

// call sends a command and waits for its answer.
func (b *browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	msg, err := json.Marshal(struct {
		ID        int    `json:"id"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
		SessionID string `json:"sessionId,omitempty"`
	}{id, method, params, session})
	if err == nil {
		_, err = b.w.Write(append(msg, 0))
	}
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (code %d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	case <-b.closed:
		return nil, fmt.Errorf("%s: the browser closed the pipe", method)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// expect registers a one-shot waiter for an event, before the command that
// causes it is sent.
func (b *browser) expect(session, method string) <-chan cdpMessage {
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	key := session + " " + method
	b.waiters[key] = append(b.waiters[key], ch)
	return ch
}

// page is a browser tab.
type page struct {
	b       *browser
	session string
}

// open creates a tab of 1280×900 CSS pixels and loads url in it.
func (b *browser) open(ctx context.Context, t *testing.T, url string) *page {
	t.Helper()
	must := func(raw json.RawMessage, err error) json.RawMessage {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	var target struct{ TargetID string }
	json.Unmarshal(must(b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"})), &target)
	var attached struct{ SessionID string }
	json.Unmarshal(must(b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})), &attached)
	p := &page{b: b, session: attached.SessionID}
	must(b.call(ctx, p.session, "Page.enable", nil))
	must(b.call(ctx, p.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}))
	loaded := b.expect(p.session, "Page.loadEventFired")
	var nav struct{ ErrorText string }
	json.Unmarshal(must(b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url})), &nav)
	if nav.ErrorText != "" {
		t.Fatalf("navigate to %s: %s", url, nav.ErrorText)
	}
	select {
	case <-loaded:
	case <-ctx.Done():
		t.Fatalf("%s did not load: %v", url, ctx.Err())
	}
	return p
}

// cardsJS lists the page's node cards as the tests see them.
const cardsJS = `() => [...document.querySelectorAll(".card")].map(c => ({
	node: c.dataset.node, status: c.dataset.status, generation: c.dataset.generation,
	self: !c.querySelector(".badge.self").hidden,
	badge: c.querySelector(".badge:not(.self)").textContent,
	keys: [...c.querySelectorAll("tr[data-key]")].map(r => r.dataset.key),
}))`

// waitFor waits until pred (a JavaScript function of the cards) holds,
// checking at each render of the page, and returns the cards as JSON.
func (p *page) waitFor(ctx context.Context, t *testing.T, desc, pred string) string {
	t.Helper()
	expr := `new Promise(resolve => {
		const cards = (` + cardsJS + `), pred = (` + pred + `);
		const check = () => {
			const cs = cards();
			if (pred(cs)) {
				document.removeEventListener("chitchat:render", check);
				resolve(JSON.stringify(cs));
			}
		};
		document.addEventListener("chitchat:render", check);
		check();
	})`
	v, err := p.eval(ctx, expr)
	if err != nil {
		// Show what the page shows instead.
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		now, _ := p.eval(c, "JSON.stringify(("+cardsJS+")())")
		t.Fatalf("/ui never showed %s: %v; it shows %s", desc, err, now)
	}
	return v
}

// eval evaluates a JavaScript expression, awaiting it if it is a promise,
// and returns its string value.
func (p *page) eval(ctx context.Context, expr string) (string, error) {
	raw, err := p.b.call(ctx, p.session, "Runtime.evaluate",
		map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true})
	if err != nil {
		return "", err
	}
	var r struct {
		Result           struct{ Value any }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", errors.New("JavaScript exception: " + r.ExceptionDetails.Text)
	}
	s, _ := r.Result.Value.(string)
	return s, nil
}

func (p *page) screenshot(ctx context.Context, t *testing.T) []byte {
	t.Helper()
	raw, err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Data string }
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}
