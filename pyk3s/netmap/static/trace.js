/* The trace box: a trace drawn as a layered diagram, its hops, and the explain engines' answers. */
"use strict";

// ------------------------------------------------------------------------------------------ trace
const LAYERS = {client: "Request", dns: "DNS", loadbalancer: "Load balancer", entrypoint: "Entry point", router: "Router",
  middleware: "Middlewares", "ingress-service": "Ingress service", service: "Service", endpoint: "Endpoints",
  source: "Source pod", route: "Route", policy: "NetworkPolicy", destination: "Destination pod"};
// layers shown as one box in the diagram (a chain, not alternatives); the list below has every hop
const CHAINED = new Set(["dns", "middleware"]);
// each engine's own answer, shown as the explain command prints it (the command comes with the trace)
const ENGINES = {
  ingress: (t) => JSON.stringify(t.ingress, null, 2),
  dns: (t) => t.dns.text,
  netpol: (t) => (t.netpol.verdicts ? t.netpol.verdicts : [t.netpol]).map((v) => v.lines.join("\n")).join("\n\n"),
};

function classify(q) {
  q = q.trim();
  if (!q) return "";
  if (q.includes("->")) return "pods";
  if (/^(tcp|udp):\/\//.test(q)) return q.slice(0, 3);
  if (q.includes("://")) return "url";
  const head = q.split(/\s+/)[0];
  if (head.includes("/") && head.split("/")[0].includes(".")) return "url";
  return "dns";
}

function traceDiagram(t) {
  const cols = [];
  const byLayer = {};
  t.hops.forEach((hop, i) => {
    if (hop.layer === "client") return;  // the query itself, shown above the diagram
    let col = byLayer[hop.layer];
    if (!col) { col = byLayer[hop.layer] = {title: LAYERS[hop.layer] || hop.layer, layer: hop.layer, hops: []}; cols.push(col); }
    col.hops.push([hop, i]);
  });
  const rank = {info: 0, ok: 1, warn: 2, error: 3};
  const columns = cols.map((col) => {
    if (CHAINED.has(col.layer) && col.hops.length > 1) {
      const worst = col.hops.reduce((a, [hop]) => rank[hop.status] > rank[a] ? hop.status : a, "info");
      const last = col.hops[col.hops.length - 1][0];
      return {title: col.title, nodes: [{id: col.layer + ":0", title: col.layer === "middleware" ? col.hops.map(([x]) => x.title.replace(/@.*/, "")).join(" → ") : last.title,
        detail: col.layer === "dns" ? last.why.join(" · ") : col.hops.map(([x]) => x.why[0]).join(" → "), status: worst, lane: -1}]};
    }
    return {title: col.title, nodes: col.hops.map(([hop], k) => ({id: `${col.layer}:${k}`, title: shortName(hop.title),
      detail: hop.status === "error" ? "" : (hop.why[0] || ""), error: hop.status === "error" ? (hop.why[0] || "") : "",
      status: hop.status, lane: col.hops.length > 1 ? k : -1, search: `${hop.title} ${hop.why.join(" ")}`,
      onclick: hop.ref ? () => follow(hop.ref) : null}))};
  });
  const edges = [];
  for (let i = 0; i + 1 < columns.length; i++) {
    const a = columns[i].nodes, b = columns[i + 1].nodes;
    for (const x of a) for (const y of b) {
      if (a.length === 1 || b.length === 1 || x.lane === y.lane) edges.push({from: x.id, to: y.id, status: y.status === "error" ? "error" : ""});
    }
  }
  const diagram = layered(columns, edges);
  diagram.classList.add("compact");
  return diagram;
}

function follow(ref) {
  const [kind, ...rest] = ref.split(":");
  const what = rest.join(":");
  const to = {service: `tab=services&focus=${encodeURIComponent(what)}`, router: `tab=ingress&focus=${encodeURIComponent(what)}`,
    node: "tab=nodes", pod: `tab=services`, entrypoint: "tab=ingress", middleware: "tab=ingress", iservice: "tab=ingress",
    policies: "tab=policies"}[kind];
  if (to) location.hash = to + (params().get("q") ? "&q=" + encodeURIComponent(params().get("q")) : "");
}

function renderTrace(t) {
  const out = $("#trace-out");
  out.hidden = false;
  const hops = t.hops.map((hop) => [
    h("div", {class: "l"}, st(hop.status, ""), LAYERS[hop.layer] || hop.layer),
    h("div", {class: "r"}, h("b", null, hop.title), hop.why.length ? h("ul", null, hop.why.map((w) => h("li", null, w))) : null)]);
  const engines = Object.keys(ENGINES).filter((k) => t[k]).map((k) => {
    const cmd = (t.commands || {})[k] || k, text = ENGINES[k](t);
    return h("details", {class: "engine", open: t.kind === "pods" || null}, h("summary", null, "Same answer as ", mono(cmd)),
      h("pre", {class: "engine-text", "data-engine": k}, text));
  });
  out.replaceChildren(
    h("div", {class: "verdict"}, st(t.status, {ok: "OK", warn: "WARNING", error: "BLOCKED", info: ""}[t.status]),
      h("span", null, t.summary), h("span", {class: "q"}, t.query),
      h("span", {class: "grow"}), h("button", {class: "ghost", onclick: () => { out.hidden = true; setHash({q: null}); }}, "close")),
    traceDiagram(t), h("div", {class: "hoplist"}, hops), ...engines);
  requestAnimationFrame(drawAllEdges);
}

async function runTrace(q) {
  $("#trace-q").value = q;
  $("#trace-kind").textContent = classify(q);
  setHash({q});
  const out = $("#trace-out");
  out.hidden = false;
  out.replaceChildren(h("div", {class: "sub"}, "tracing…"));
  window.scrollTo({top: 0});
  try {
    const t = await getJSON("api/trace?q=" + encodeURIComponent(q));
    if ($("#trace-q").value === q) renderTrace(t);
  } catch (err) {
    out.replaceChildren(h("div", {class: "reason"}, String(err.message || err)));
  }
}

function examples() {
  const out = [];
  const svc = [];
  for (const ns of (data.services && data.services.namespaces) || []) for (const s of ns.services) if (s.ready) svc.push(s);
  const user = svc.find((s) => s.namespace !== "kube-system" && s.namespace !== "default") || svc.find((s) => s.namespace === "default" && s.name !== "kubernetes");
  if (user) out.push(user.dns[0]);
  const r = ((data.ingress && data.ingress.routers) || []).find((x) => /Host\(`([^`]+)`\)/.test(x.rule) && x.provider !== "internal");
  if (r) {
    const host = /Host\(`([^`]+)`\)/.exec(r.rule)[1];
    const path = (/PathPrefix\(`([^`]+)`\)/.exec(r.rule) || [null, "/"])[1];
    out.push(`http://${host}${path}`);
  }
  const p = data.policies;
  if (p && p.available && p.pods && p.pods.length > 1) out.push(`${p.pods[0].key} -> ${p.pods[1].key}:${p.port.replace(/\/TCP$/i, "")}`);
  $("#trace-examples").replaceChildren(out.length ? h("span", null, "e.g.") : null,
    ...out.map((q) => h("button", {type: "button", onclick: () => runTrace(q)}, q)));
}
