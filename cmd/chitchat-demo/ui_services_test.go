package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestUIPageHasServicesBlock(t *testing.T) {
	tests := []struct {
		name, page, want string
	}{
		{"before </main>", "<body><main>x</main></body>", "<body><main>x" + servicesBlock + "</main></body>"},
		{"before </body> without main", "<body>x</body>", "<body>x" + servicesBlock + "</body>"},
		{"appended otherwise", "x", "x" + servicesBlock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(withServicesBlock([]byte(tt.page))); got != tt.want {
				t.Errorf("withServicesBlock(%q) = %q", tt.page, got)
			}
		})
	}
	if !strings.Contains(string(uiHead)+string(uiTail), `<section id="services"`) {
		t.Error("the /ui page has no services section")
	}
}

// /ui lists every node's services with their health, live: a service whose
// check fails is critical, and a killed node's services turn critical.
func TestUIServicesInBrowser(t *testing.T) {
	t.Parallel()
	browserPath := findBrowser()
	if browserPath == "" {
		t.Skip("no headless browser: none of chromium, chromium-browser, google-chrome is on PATH; " +
			"install one (Debian: apt-get install chromium) to test /ui in a browser")
	}
	ctx := testContext(t)
	// A TCP check against a port nobody listens on: critical.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "cache.json")
	os.WriteFile(file, []byte(`{"service": {"name": "cache", "port": 6379, "check": {"tcp": "`+closed+`", "interval": "1s"}}}`), 0o600)
	nodes := startNodes(ctx, t, freePorts(t, 2), 2, func(i int) []string {
		args := []string{"--interval_ms", "100", "--initial_interval", "1s", "--service", "web:" + strconv.Itoa(8080+i) + ":v1"}
		if i == 1 {
			args = append(args, "--service_file", file)
		}
		return args
	})

	b := startBrowser(ctx, t, browserPath)
	page := b.open(ctx, t, nodes[0].url+"/ui")
	rows := waitServices(ctx, t, page, "web on both nodes, cache critical", `rows =>
		rows.join() === "node_0/web/passing,node_1/cache/critical,node_1/web/passing"`)
	t.Logf("services: %s", rows)
	if os.Getenv("SERVICES_SCREENSHOT") != "" {
		os.WriteFile(os.Getenv("SERVICES_SCREENSHOT"), page.screenshot(ctx, t), 0o644)
	}

	nodes[1].cmd.Process.Kill()
	nodes[1].wait(ctx)
	rows = waitServices(ctx, t, page, "node_1's services critical once it is dead", `rows =>
		rows.join() === "node_0/web/passing,node_1/cache/critical,node_1/web/critical"`)
	t.Logf("services: %s", rows)
}

// waitServices waits until pred holds for the services table's rows
// ("node/service/status"), checking at each render of the block.
func waitServices(ctx context.Context, t *testing.T, p *page, desc, pred string) string {
	t.Helper()
	rowsJS := `() => [...document.querySelectorAll("#servicesBody tr[data-node]")].map(r => r.dataset.node + "/" + r.dataset.service + "/" + r.dataset.status)`
	v, err := p.eval(ctx, `new Promise(resolve => {
		const rows = (`+rowsJS+`), pred = (`+pred+`);
		const check = () => {
			if (pred(rows())) {
				document.removeEventListener("chitchat:services", check);
				resolve(JSON.stringify(rows()));
			}
		};
		document.addEventListener("chitchat:services", check);
		check();
	})`)
	if err != nil {
		c, cancel := context.WithTimeout(context.Background(), 2e9)
		defer cancel()
		now, _ := p.eval(c, "JSON.stringify(("+rowsJS+")())")
		t.Fatalf("/ui never showed %s: %v; it shows %s", desc, err, now)
	}
	return v
}
