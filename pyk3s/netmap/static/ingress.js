/* The Ingress view: entry points -> routers -> middlewares -> services -> endpoints. */
"use strict";

// ---------------------------------------------------------------------------------------- ingress
const shortName = (name) => name.replace(/@.*$/, "");

const PROTO = {http: "", tcp: "tcp", udp: "udp"};
const byProtocol = (d, protocol, what) => d[PROTO[protocol] ? PROTO[protocol] + what[0].toUpperCase() + what.slice(1) : what] || {};

function renderIngress() {
  const d = data.ingress;
  if (!d || d.error) return failed(d) || [];
  const focus = params().get("focus");
  const eps = d.entrypoints.filter((e) => e.name !== "traefik" || e.routers.some((r) => !r.endsWith("@internal")));
  const routers = d.routers.filter((r) => r.provider !== "internal");
  const epIndex = Object.fromEntries(eps.map((e, i) => [e.name, i]));
  routers.sort((a, b) => (Math.min(...a.entryPoints.map((e) => epIndex[e] ?? 99)) - Math.min(...b.entryPoints.map((e) => epIndex[e] ?? 99))) ||
    a.protocol.localeCompare(b.protocol) || a.name.localeCompare(b.name));
  // node ids carry the protocol: an HTTP and a TCP service may share a name
  const rid = (r) => `r:${r.protocol}:${r.name}`, mid = (p, m) => `m:${p}:${m}`, sid = (p, s) => `s:${p}:${s}`;
  // the middleware column in router order; a router without middlewares gets a pass-through mark there,
  // so that its line to the service does not seem to run through another router's middleware
  const mwOrder = [], svcOrder = [];
  for (const r of routers) {
    if (!r.middlewares.length) mwOrder.push([r.protocol, "-" + r.name]);
    for (const m of r.middlewares) if (!mwOrder.some(([p, x]) => p === r.protocol && x === m)) mwOrder.push([r.protocol, m]);
    if (r.service && !svcOrder.some(([p, x]) => p === r.protocol && x === r.service)) svcOrder.push([r.protocol, r.service]);
  }
  const hasMw = routers.some((r) => r.middlewares.length);
  const edges = [];
  const col = (title, nodes) => ({title, nodes});
  const epNodes = eps.map((e) => ({id: "ep:" + e.name, title: e.name,
    label: (e.protocol === "udp" ? "UDP " : (e.tls ? "TLS " : "")) + "entry point",
    detail: `${e.address}${e.published.length ? "  ← :" + e.published.join(", :") : ""}`, status: "ok"}));
  const usedBy = {};
  const rNodes = routers.map((r) => {
    const bad = r.status === "disabled" ? "error" : "";
    const groups = [rid(r)];
    for (const ep of r.entryPoints) edges.push({from: "ep:" + ep, to: rid(r), status: bad, groups});
    const mws = r.middlewares.length ? r.middlewares.map((m) => mid(r.protocol, m)) : (hasMw ? [mid(r.protocol, "-" + r.name)] : []);
    const chain = [rid(r), ...mws, r.service ? sid(r.protocol, r.service) : null].filter(Boolean);
    for (let i = 0; i + 1 < chain.length; i++) edges.push({from: chain[i], to: chain[i + 1], status: bad, groups});
    if (r.service) (usedBy[sid(r.protocol, r.service)] = usedBy[sid(r.protocol, r.service)] || []).push(rid(r));
    const kind = r.protocol === "http" ? r.provider : `${r.protocol.toUpperCase()} · ${r.provider}`;
    return {id: rid(r), title: shortName(r.name), label: `${kind}${r.passthrough ? " · passthrough" : (r.tls ? " · tls" : "")}${r.priority ? " · priority " + r.priority : ""}`,
      detail: r.rule || (r.protocol === "udp" ? "every datagram of the entry point" : ""), error: r.errors.join("; "), flash: ["ingress", rid(r)],
      status: r.status === "disabled" ? "error" : (r.status === "warning" ? "warn" : "ok"),
      search: `${r.protocol} ${r.name} ${r.rule} ${r.from} ${r.errors.join(" ")}`, tip: r.from || null,
      onclick: () => { setHash({focus: r.name}); renderTab(); }};
  });
  const mNodes = mwOrder.map(([p, m]) => {
    if (m.startsWith("-")) return {id: mid(p, m), title: "→", label: "no middleware", status: "pass", search: m.slice(1)};
    const mw = byProtocol(d, p, "middlewares")[m] || {type: "?", status: "disabled", errors: ["not defined"]};
    return {id: mid(p, m), title: shortName(m), label: (p === "http" ? "" : p.toUpperCase() + " ") + (mw.type || "middleware"),
      error: (mw.errors || []).join("; "), status: mw.status === "enabled" ? "ok" : "error"};
  });
  const endpoints = [];
  const sNodes = svcOrder.map(([p, sname]) => {
    const s = byProtocol(d, p, "services")[sname] || {type: "", status: "disabled", errors: ["not defined"], servers: [], children: []};
    for (const srv of s.servers) {
      const id = `e:${srv.address}:${srv.port}`;
      if (!endpoints.some((x) => x.id === id)) {
        endpoints.push({id, title: srv.pod ? srv.pod.split("/")[1] : `${srv.address}:${srv.port}`, label: srv.node ? "pod on " + srv.node : "server",
          detail: `${srv.address}:${srv.port}`, status: srv.ready ? "ok" : "warn", search: `${srv.url} ${srv.pod} ${srv.node} ${srv.service}`});
      }
      edges.push({from: sid(p, sname), to: id, groups: usedBy[sid(p, sname)] || []});
    }
    const k8s = Array.from(new Set(s.servers.map((x) => x.service).filter(Boolean)));
    const empty = s.status === "enabled" && !s.servers.length && !s.children.length;
    return {id: sid(p, sname), title: shortName(sname), label: (p === "http" ? "" : p.toUpperCase() + " ") + (s.type || "service"),
      detail: k8s.length ? "→ Service " + k8s.join(", ") : (s.children.length ? "→ " + s.children.map(shortName).join(", ") : ""),
      error: (s.errors || []).join("; ") || (empty ? "no available server" + (p === "http" ? " (503)" : "") : ""),
      status: s.status !== "enabled" ? "error" : (empty ? "warn" : "ok")};
  });
  const columns = [col("Entry points", epNodes), col("Routers", rNodes)];
  if (hasMw) columns.push(col("Middlewares", mNodes));
  columns.push(col("Services", sNodes), col("Endpoints", endpoints));
  doneFlash("ingress");
  const lb = d.lb;
  const head = h("div", {class: "panel"}, h("div", {class: "head"}, "Request path",
    h("span", {class: "sub"}, `entry points → routers (HTTP, TCP, UDP) → middlewares → services → endpoints · configuration from ${d.source}`),
    lb ? (lb.state === "ready" ? pill("ok", `${d.publishedService}: ${lb.addresses.join(", ")}`) : pill("error", `${d.publishedService} Pending`)) : null),
  d.problem ? h("div", {class: "body"}, h("div", {class: "reason warn"}, d.problem)) : null,
  lb && lb.state !== "ready" ? h("div", {class: "body"}, lbReason(lb)) : null,
  routers.length ? layered(columns, edges) : h("div", {class: "empty"}, "No routers: no Ingress or IngressRoute is served."));
  const rows = [];
  for (const r of routers) {
    const sel = focus === r.name;
    rows.push(h("tr", {class: "row" + (sel ? " sel" : ""), id: "router-" + r.name, "data-search": `${r.protocol} ${r.name} ${r.rule} ${r.from} ${r.errors.join(" ")} ${r.service}`,
      onclick: () => { setHash({focus: r.name}); renderTab(); }},
    h("td", null, st(r.status === "disabled" ? "error" : (r.status === "warning" ? "warn" : "ok"), r.status)),
    h("td", null, h("b", null, mono(shortName(r.name))), " ", r.protocol !== "http" ? pill("", r.protocol.toUpperCase()) : null,
      h("div", {class: "sub"}, r.from || r.provider)),
    h("td", null, mono(r.rule || "-"), r.errors.length ? h("div", {class: "why"}, r.errors.join("; ")) : null),
    h("td", null, mono(r.entryPoints.join(", "))), h("td", null, mono(r.middlewares.map(shortName).join(" → ") || "-")),
    h("td", null, mono(shortName(r.service) || "-"))));
  }
  const table = h("div", {class: "panel"}, h("div", {class: "head"}, "Routers", h("span", {class: "sub"}, plural(routers.length, "router"))),
    h("table", null, h("thead", null, h("tr", null, ["Status", "Router", "Rule", "Entry points", "Middlewares", "Service"].map((t) => h("th", null, t)))),
      h("tbody", null, rows)));
  if (focus) requestAnimationFrame(() => { const el = document.getElementById("router-" + focus); if (el) el.scrollIntoView({block: "center"}); });
  return [head, table];
}
