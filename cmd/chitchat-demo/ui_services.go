package main

import "bytes"

// servicesBlock is the /ui page's service-discovery section: every node's
// services and their health, followed with blocking queries on
// /v1/internal/ui/nodes. It is spliced into ui.html at load time (before
// </main>, or </body> if the page has none) so that the page itself stays
// the cluster view's; it uses the page's colours and classes, builds
// everything with textContent (names, tags and check outputs come from
// gossip), and dispatches "chitchat:services" after each render.
const servicesBlock = `
<section id="services" aria-labelledby="servicesTitle">
<style>
  #services { margin-top: 24px; background: var(--panel); border: 1px solid var(--border); border-radius: 12px;
    padding: 14px 16px; box-shadow: var(--shadow); }
  #services h2 { margin: 0 0 10px; font-size: 15px; font-weight: 650; }
  #services h2 small { color: var(--muted); font-weight: 450; font-size: 12.5px; margin-left: 8px; }
  #services .badge.warning { color: var(--ttl); background: var(--ttl-bg); }
  #services td.out { color: var(--muted); font-size: 12.5px; }
</style>
<h2 id="servicesTitle">Services<small>service catalog, as Consul's API and DNS serve it</small></h2>
<table>
  <thead><tr><th>Node</th><th>Service</th><th>Address</th><th>Tags</th><th>Health</th><th>Check output</th></tr></thead>
  <tbody id="servicesBody"><tr><td colspan="6" class="empty">loading…</td></tr></tbody>
</table>
<script>
(() => {
  "use strict";
  const body = document.getElementById("servicesBody");
  const rank = { passing: 0, warning: 1, critical: 2 };
  const cell = (text, cls) => { const td = document.createElement("td"); if (cls) td.className = cls; td.textContent = text; return td; };
  window.chitchatServiceRenders = 0;
  function render(nodes) {
    const rows = [];
    for (const n of nodes) {
      for (const s of n.Services) {
        // An instance's health: its node's serfHealth and its own check, worst first.
        const checks = n.Checks.filter(c => c.CheckID === "serfHealth" || c.ServiceID === s.ID);
        const worst = checks.reduce((w, c) => rank[c.Status] > rank[w] ? c.Status : w, "passing");
        const tr = document.createElement("tr");
        tr.dataset.node = n.Node; tr.dataset.service = s.Service; tr.dataset.status = worst;
        const badge = document.createElement("span");
        badge.className = "badge " + (worst === "passing" ? "live" : worst === "warning" ? "warning" : "dead");
        badge.textContent = worst;
        const health = cell(""); health.append(badge);
        tr.append(cell(n.Node, "mono"), cell(s.ID === s.Service ? s.Service : s.Service + " (" + s.ID + ")"),
          cell((s.Address || n.Address) + ":" + s.Port, "mono"), cell(s.Tags.join(", ")), health,
          cell(checks.filter(c => c.Status !== "passing").map(c => c.Output).join(" · "), "out"));
        rows.push(tr);
      }
    }
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.append(cell("No service announced yet: start nodes with --service name:port or --service_file.", "empty"));
      tr.firstChild.colSpan = 6;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    window.chitchatServiceRenders++;
    document.dispatchEvent(new Event("chitchat:services"));
  }
  async function follow() {
    let index = 0;
    for (;;) {
      try {
        const r = await fetch("/v1/internal/ui/nodes?wait=60s&index=" + index, { cache: "no-store" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        index = Number(r.headers.get("X-Consul-Index")) || 0;
        render(await r.json());
      } catch (e) {
        index = 0;
        await new Promise(res => setTimeout(res, 2000));
      }
    }
  }
  follow();
})();
</script>
</section>
`

// withServicesBlock returns page with servicesBlock spliced in.
func withServicesBlock(page []byte) []byte {
	for _, anchor := range []string{"</main>", "</body>"} {
		if i := bytes.LastIndex(page, []byte(anchor)); i >= 0 {
			return bytes.Join([][]byte{page[:i], []byte(servicesBlock), page[i:]}, nil)
		}
	}
	return append(page, servicesBlock...)
}
