/* pyk3s map: the page. Plain JavaScript, no build step. Data comes from /api/* (the same JSON a
   script can read); /api/watch says which views changed, and only those are fetched again. */
"use strict";

// ---------------------------------------------------------------------------------------- helpers
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** h("div", {class: "x", onclick: f}, child, "text", [more]) -> an element (text is never parsed as HTML). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}
const svgEl = (tag, attrs) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
};
const st = (status, text) => h("span", {class: `st ${status}`}, text);
const pill = (status, text) => h("span", {class: `pill ${status || ""}`}, text);
const mono = (text) => h("code", null, text);
const plural = (n, word) => `${n} ${n === 1 ? word : (word.endsWith("y") ? word.slice(0, -1) + "ie" : word) + "s"}`;

async function getJSON(path) {
  const res = await fetch(new URL(path, location.origin + location.pathname), {cache: "no-store"});
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Errors of the page itself: shown, and kept in window.mapErrors for tests. */
function pageError(err) {
  const text = String((err && (err.message || err.reason)) || err);
  (window.mapErrors = window.mapErrors || []).push(text);
  toast("page error: " + text);
}
window.addEventListener("error", (e) => pageError(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => pageError(e.reason));

function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3000);
}

// ------------------------------------------------------------------------------------------ state
const data = {overview: null, nodes: null, services: null, ingress: null, policies: null};
const ui = {
  tab: "overview", search: "", expanded: new Set(), seen: {}, policyNs: null, policyPort: "80/TCP",
  cell: null, cellExplain: null, revision: 0, loaded: false,
};
// which API answers a view notice refreshes
const FEEDS = {nodes: ["nodes", "overview"], services: ["services", "overview"], ingress: ["ingress", "overview"],
  policies: ["policies", "overview"], dns: []};

function params() { return new URLSearchParams(location.hash.replace(/^#/, "")); }

function setHash(changes) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") p.delete(k); else p.set(k, v);
  }
  history.replaceState(null, "", "#" + p.toString());
}

// ------------------------------------------------------------------------------------------ loading
async function load(name) {
  try {
    if (name === "policies") {
      const p = new URLSearchParams();
      for (const ns of ui.policyNs || []) p.append("namespace", ns);
      p.set("port", ui.policyPort);
      data.policies = await getJSON("api/policies?" + p.toString());
      if (ui.policyNs === null && data.policies.selected) ui.policyNs = new Set(data.policies.selected);
    } else {
      data[name] = await getJSON("api/" + name);
    }
  } catch (err) {
    data[name] = {error: String(err.message || err)};
  }
}

async function loadAll() {
  await Promise.all(["overview", "nodes", "services", "ingress", "policies"].map(load));
  ui.loaded = true;
  render();
}

let changeQueue = new Set();
let changeTimer = null;
function onChange(views) {
  for (const v of views) for (const f of FEEDS[v] || []) changeQueue.add(f);
  if (changeTimer) return;
  changeTimer = setTimeout(async () => {
    const names = Array.from(changeQueue);
    changeQueue = new Set();
    changeTimer = null;
    await Promise.all(names.map(load));
    render();
  }, 60);
}

function connect() {
  const live = $("#live");
  const es = new EventSource(new URL("api/watch", location.origin + location.pathname));
  es.addEventListener("hello", (e) => {
    live.className = "live on";
    const first = ui.revision === 0;
    ui.revision = JSON.parse(e.data).revision;
    $("#live-text").textContent = "live";
    if (!first) loadAll();  // reconnected: anything may have changed meanwhile
  });
  es.addEventListener("change", (e) => {
    const msg = JSON.parse(e.data);
    ui.revision = msg.revision;
    onChange(msg.views);
  });
  es.onerror = () => { live.className = "live off"; $("#live-text").textContent = "reconnecting"; };
}

// ------------------------------------------------------------------------------------------ render
function render() {
  if (!ui.loaded) return;
  const o = data.overview || {};
  $("#cluster").textContent = o.server ? `${o.server}  ·  ${o.domain || ""}` : "";
  badges();
  const renderers = {overview: renderOverview, services: renderServices, ingress: renderIngress,
    policies: renderPolicies, nodes: renderNodes};
  for (const [name, fn] of Object.entries(renderers)) {
    const view = $(`#view-${name}`);
    view.classList.toggle("on", name === ui.tab);
    if (name !== ui.tab && view.dataset.rendered === String(ui.revision)) continue;
    const y = window.scrollY;
    let content;
    try {
      content = [].concat(fn());
    } catch (err) {  // one broken view must not take the others down: say so in its place
      pageError(err);
      content = [h("div", {class: "panel"}, h("div", {class: "empty"}, `This view failed: ${err.message || err}`))];
    }
    view.replaceChildren(...content);
    view.dataset.rendered = String(ui.revision);
    if (name === ui.tab) window.scrollTo(0, y);
  }
  $$("#tabs a[data-tab]").forEach((a) => a.classList.toggle("on", a.dataset.tab === ui.tab));
  applySearch();
  requestAnimationFrame(drawAllEdges);
}

function badges() {
  const o = data.overview;
  if (!o || o.error) return;
  const set = (id, text, cls) => { const b = $(id); b.textContent = text; b.className = "badge " + (cls || ""); };
  const pending = o.loadBalancers.pending;
  const empty = o.services.withoutEndpoints;
  set("#badge-services", pending ? `${pending} pending` : (empty ? `${empty} empty` : o.services.total),
    pending ? "err" : (empty ? "warn" : ""));
  set("#badge-ingress", o.routers.errors ? `${o.routers.errors} error${o.routers.errors === 1 ? "" : "s"}` : o.routers.routers,
    o.routers.errors ? "err" : "");
  set("#badge-policies", o.policies || "", "");
  const down = o.nodes.total - o.nodes.ready;
  set("#badge-nodes", down ? `${down} not ready` : o.nodes.total, down ? "err" : "");
}

/** Marks rows and nodes that are new since the last render of a view with .flash. */
function flashNew(view, key, el) {
  const seen = ui.seen[view] || (ui.seen[view] = {keys: new Set(), first: true});
  if (!seen.keys.has(key)) {
    seen.keys.add(key);
    if (!seen.first) el.classList.add("flash");
  }
  return el;
}
function doneFlash(view) { (ui.seen[view] || (ui.seen[view] = {keys: new Set()})).first = false; }

function failed(d) {
  return d && d.error ? h("div", {class: "panel"}, h("div", {class: "empty"}, "Could not load: " + d.error)) : null;
}

// --------------------------------------------------------------------------------------- overview
function renderOverview() {
  const o = data.overview;
  if (!o || o.error) return failed(o) || [];
  const go = (tab) => () => { location.hash = "tab=" + tab; };
  const card = (n, t, s, tab, cls) => h("div", {class: "card", onclick: go(tab)},
    h("div", {class: "n"}, n), h("div", {class: "t"}, t), s ? h("div", {class: "s"}, s) : null);
  const cards = h("div", {class: "cards"},
    card(`${o.nodes.ready}/${o.nodes.total}`, "nodes ready", o.nodes.ready < o.nodes.total ?
      st("error", `${o.nodes.total - o.nodes.ready} not ready`) : st("ok", "all Ready"), "nodes"),
    card(o.services.total, `Services in ${plural(o.namespaces, "namespace")}`, o.services.withoutEndpoints ?
      st("warn", `${o.services.withoutEndpoints} without ready endpoints`) : st("ok", "all have endpoints"), "services"),
    card(o.loadBalancers.total, "LoadBalancers", o.loadBalancers.pending ?
      st("error", `${o.loadBalancers.pending} Pending`) : st("ok", "all have addresses"), "services"),
    card(o.routers.routers, "ingress routers", o.routers.errors ? st("error", `${o.routers.errors} in error`) :
      (o.routers.warnings ? st("warn", `${o.routers.warnings} with warnings`) : st("ok", "all enabled")), "ingress"),
    card(o.policies, "NetworkPolicies", null, "policies"));
  const items = attention();
  const list = h("div", {class: "panel"}, h("div", {class: "head"}, "Needs attention",
    h("span", {class: "sub"}, items.length ? "what does not work, and why" : "")),
  items.length ? h("ul", {class: "attention"}, items) : h("div", {class: "empty"}, "Nothing: every node is Ready, " +
      "every LoadBalancer has an address, every router is enabled and every Service has endpoints."));
  const paths = entryPanel();
  return [cards, list, nodeStrip(), paths];
}

function attention() {
  const out = [];
  const item = (status, what, why, href) => h("li", {"data-search": `${what} ${why}`},
    st(status, ""), h("a", {class: "what", href}, what), h("span", {class: status === "error" ? "why" : "why warn"}, why));
  for (const n of (data.nodes && data.nodes.nodes) || []) {
    if (!n.ready) out.push(item("error", `node ${n.name}`, `not Ready: ${n.readyReason}`, "#tab=nodes"));
  }
  for (const ns of (data.services && data.services.namespaces) || []) {
    for (const s of ns.services) {
      const href = `#tab=services&focus=${encodeURIComponent(s.key)}`;
      if (s.lb && s.lb.state !== "ready") {
        const nodes = Object.entries(s.lb.nodes);
        out.push(item("error", `LoadBalancer ${s.key}`, nodes.length ?
          `Pending: ${nodes.map(([n, r]) => `${n}: ${r}`).join(" · ")}` : `Pending: ${s.lb.reason}`, href));
      } else if (s.problems.length) {
        out.push(item("warn", `Service ${s.key}`, s.problems.join("; "), href));
      }
    }
  }
  for (const r of (data.ingress && data.ingress.routers) || []) {
    if (r.status !== "enabled") {
      out.push(item(r.status === "disabled" ? "error" : "warn", r.from || `router ${shortName(r.name)}`,
        `router ${shortName(r.name)}: ${r.errors.join("; ")}`, `#tab=ingress&focus=${encodeURIComponent(r.name)}`));
    }
  }
  if (data.ingress && data.ingress.problem) out.push(item("warn", "ingress configuration", data.ingress.problem, "#tab=ingress"));
  return out;
}

/** The nodes side by side: state, address, pod CIDR, backend, pods. */
function nodeStrip() {
  const nodes = (data.nodes && data.nodes.nodes) || [];
  if (!nodes.length) return null;
  return h("div", {class: "panel"}, h("div", {class: "head"}, "Nodes", h("span", {class: "sub"},
    `pod network: ${Array.from(new Set(nodes.map((n) => n.backend.type))).join(", ")}`)),
  h("div", {class: "strip"}, nodes.map((n) => h("a", {class: `nodecard ${n.ready ? "ok" : "error"}`, href: "#tab=nodes",
    "data-search": `${n.name} ${n.addresses.map((a) => a.address).join(" ")}`},
  h("div", {class: "nt"}, st(n.ready ? "ok" : "error", ""), mono(n.name)),
  h("div", {class: "nd"}, mono(n.addresses.filter((a) => a.type === "InternalIP").map((a) => a.address).join(", ") || "-")),
  h("div", {class: "nd"}, mono(n.podCIDRs.join(", ") || "no pod CIDR")),
  h("div", {class: "nd"}, `${n.podsReady}/${n.pods} pods ready · ${n.backend.type}`),
  n.ready ? null : h("div", {class: "why"}, n.readyReason)))));
}

function entryPanel() {
  const ing = data.ingress;
  if (!ing || ing.error) return null;
  const lb = ing.lb;
  const rows = ing.entrypoints.filter((e) => e.name !== "traefik").map((e) => h("tr", {"data-search": e.name},
    h("td", {class: "nowrap"}, mono(e.name)), h("td", null, mono(e.address)),
    h("td", null, e.published.length ? e.published.map((p) => `:${p}`).join(", ") : h("span", {class: "sub"}, "not published")),
    h("td", null, e.tls ? pill("ok", "TLS") : pill("", "plain")), h("td", null, plural(e.routers.length, "router"))));
  return h("div", {class: "panel"},
    h("div", {class: "head"}, "Ways in", h("span", {class: "sub"},
      ing.publishedService ? `the ingress is published by Service ${ing.publishedService}` : `ingress configuration: ${ing.source}`),
    lb ? (lb.state === "ready" ? pill("ok", lb.addresses.join(", ")) : pill("error", "Pending")) : null),
    lb && lb.state !== "ready" ? h("div", {class: "body"}, lbReason(lb)) : null,
    h("table", null, h("thead", null, h("tr", null, ["Entry point", "Listens", "Published on", "TLS", "Routers"].map((t) => h("th", null, t)))),
      h("tbody", null, rows)));
}

// --------------------------------------------------------------------------------------- services
function lbReason(lb) {
  const nodes = Object.entries(lb.nodes || {});
  return h("div", {class: "reason"},
    h("div", null, h("b", null, "Pending: "), nodes.length ? "no node can serve this load balancer" : lb.reason),
    nodes.length ? h("ul", null, nodes.map(([n, r]) => h("li", null, h("b", null, n), ": ", r))) : null);
}

function endpointsCell(s) {
  if (s.type === "ExternalName") return h("span", {class: "sub"}, "CNAME " + s.externalName);
  const total = s.ready + s.notReady;
  return h("span", {class: "nowrap"},
    h("span", {class: "bar"}, h("i", {style: `width:${total ? 100 * s.ready / total : 0}%`}),
      h("em", {style: `width:${total ? 100 * s.notReady / total : 0}%`})),
    total ? `${s.ready}/${total} ready` : h("span", {class: "why"}, "none"));
}

function externalCell(s) {
  if (s.lb) {
    if (s.lb.state === "ready") return h("div", null, pill("ok", "LB"), " ", mono(s.lb.addresses.join(", ")));
    return pill("error", s.lb.state === "invalid" ? "Invalid" : "Pending");
  }
  if (s.type === "NodePort") return h("span", null, pill("", "NodePort"), " ", mono(s.ports.map((p) => p.nodePort).filter(Boolean).join(", ")));
  if (s.externalIPs.length) return mono(s.externalIPs.join(", "));
  return h("span", {class: "sub"}, "-");
}

function serviceDetail(s) {
  const eps = s.endpoints.map((e) => h("tr", null,
    h("td", null, mono(e.addresses.join(", "))), h("td", null, e.pod ? mono(e.pod) : h("span", {class: "sub"}, "by hand")),
    h("td", null, e.node ? mono(e.node) : "-"), h("td", null, e.ports.join(", ")),
    h("td", null, e.ready ? st("ok", "ready") : st(e.terminating ? "warn" : "error", e.terminating ? "terminating" : "not ready"),
      e.problem ? h("div", {class: "sub"}, e.problem) : null)));
  const events = s.events.map((e) => h("tr", null, h("td", null, st(e.type === "Warning" ? "warn" : "info", e.type)),
    h("td", null, mono(e.reason)), h("td", null, e.message), h("td", {class: "nowrap sub"}, `${e.count}× ${e.last.replace("T", " ").replace("Z", "")}`)));
  return h("div", null,
    h("div", {class: "kv"},
      h("div", null, "DNS"), h("div", null, mono(s.dns.join(", "))),
      h("div", null, "Selector"), h("div", null, Object.keys(s.selector).length ? mono(Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(",")) : "none"),
      h("div", null, "Traffic policy"), h("div", null, `external ${s.externalTrafficPolicy || "-"}, internal ${s.internalTrafficPolicy || "-"}, affinity ${s.sessionAffinity}`),
      h("div", null, "Trace"), h("div", null, h("button", {class: "ghost", onclick: (ev) => { ev.stopPropagation(); runTrace(s.dns[0]); }}, `trace ${s.dns[0]}`))),
    h("h4", null, "Endpoints"),
    eps.length ? h("table", null, h("thead", null, h("tr", null, ["Address", "Pod", "Node", "Ports", "State"].map((t) => h("th", null, t)))), h("tbody", null, eps))
      : h("div", {class: "sub"}, "no endpoints"),
    events.length ? [h("h4", null, "Events"), h("table", null, h("tbody", null, events))] : null);
}

function renderServices() {
  const d = data.services;
  if (!d || d.error) return failed(d) || [];
  const focus = params().get("focus");
  const out = [];
  const quiet = [];
  for (const ns of d.namespaces) {
    if (!ns.services.length) { quiet.push(ns.name); continue; }
    const rows = [];
    for (const s of ns.services) {
      const open = ui.expanded.has("svc:" + s.key) || focus === s.key;
      const search = [s.key, s.type, s.clusterIPs.join(" "), s.dns.join(" "), s.ports.map((p) => `${p.port}/${p.protocol}`).join(" "),
        s.endpoints.map((e) => `${e.pod} ${e.node} ${e.addresses.join(" ")}`).join(" "), s.problems.join(" "),
        s.lb ? `${s.lb.addresses.join(" ")} ${s.lb.reason}` : ""].join(" ");
      const row = h("tr", {class: "row" + (open ? " sel" : ""), id: "svc-" + s.key, "data-search": search,
        onclick: () => { toggle("svc:" + s.key); }},
      h("td", {class: "nowrap"}, h("b", null, s.name), " ", pill(s.type === "LoadBalancer" ? "" : "", s.type)),
      h("td", null, mono(s.clusterIPs.join(", ") || (s.headless ? "None (headless)" : "-"))),
      h("td", null, mono(s.ports.map((p) => `${p.port}${p.targetPort !== p.port ? "→" + p.targetPort : ""}/${p.protocol}`).join(", ") || "-")),
      h("td", null, endpointsCell(s)),
      h("td", null, externalCell(s)));
      rows.push(flashNew("services", s.key, row));
      const reasons = [];
      if (s.lb && s.lb.state !== "ready") reasons.push(lbReason(s.lb));
      if (s.problems.length) reasons.push(h("div", {class: "reason warn"}, s.problems.join("; ")));
      if (reasons.length) rows.push(h("tr", {class: "why-row", "data-search": search}, h("td", {colspan: 5}, reasons)));
      if (open) rows.push(h("tr", {class: "detail", "data-search": search}, h("td", {colspan: 5}, serviceDetail(s))));
    }
    const labels = Object.entries(ns.labels).filter(([k]) => k !== "kubernetes.io/metadata.name").map(([k, v]) => `${k}=${v}`).join(" ");
    out.push(h("div", {class: "panel ns", "data-ns": ns.name},
      h("div", {class: "head ns-head"}, h("span", null, "namespace ", h("b", null, ns.name)),
        h("span", {class: "sub"}, plural(ns.services.length, "Service")), h("span", {class: "labels"}, labels)),
      h("table", null, h("thead", null, h("tr", null, ["Service", "Cluster IP", "Ports", "Endpoints", "External"].map((t) => h("th", null, t)))),
        h("tbody", null, rows))));
  }
  doneFlash("services");
  if (quiet.length) out.push(h("div", {class: "sub"}, "Namespaces without Services: " + quiet.join(", ")));
  if (focus) requestAnimationFrame(() => { const el = document.getElementById("svc-" + focus); if (el) el.scrollIntoView({block: "center"}); });
  return out;
}

function toggle(key) {
  if (ui.expanded.has(key)) ui.expanded.delete(key); else ui.expanded.add(key);
  setHash({focus: null});
  delete $(`#view-${ui.tab}`).dataset.rendered;
  render();
}

// ---------------------------------------------------------------------------------------- diagram
/** A layered diagram: columns of nodes, edges drawn as curves between them (SVG behind the cards).
    Hovering a node lights up every path through it. */
function layered(columns, edges) {
  const wrap = h("div", {class: "diagram", style: `grid-template-columns: repeat(${columns.length}, minmax(0, 1fr))`});
  const svg = svgEl("svg", {class: "edges"});
  wrap.append(svg);
  for (const col of columns) {
    wrap.append(h("div", {class: "col"}, h("h3", null, col.title), col.nodes.map((n) => {
      const el = h("div", {class: `node ${n.status || "info"}${n.onclick ? " link" : ""}`, "data-id": n.id,
        "data-search": n.search || `${n.title} ${n.detail || ""} ${n.error || ""}`, onclick: n.onclick, title: n.tip || null},
      n.label ? h("div", {class: "nl"}, n.label) : null, h("div", {class: "nt"}, n.title),
      n.detail ? h("div", {class: "nd"}, n.detail) : null, n.error ? h("div", {class: "ne"}, n.error) : null);
      return n.flash ? flashNew(n.flash[0], n.flash[1], el) : el;
    })));
  }
  wrap._edges = edges;
  wrap.addEventListener("mouseover", (e) => { const n = e.target.closest(".node"); if (n) light(wrap, n.dataset.id); });
  wrap.addEventListener("mouseleave", () => light(wrap, null));
  return wrap;
}

function light(wrap, id) {
  const on = new Set();
  const hot = new Set();
  if (id) {
    on.add(id);
    const edges = wrap._edges;
    if (edges.some((e) => e.groups)) {
      // edges carry the routes they belong to: light every route through the node, and only those
      const groups = new Set(edges.filter((e) => e.from === id || e.to === id).flatMap((e) => e.groups || []));
      edges.forEach((e, i) => {
        if ((e.groups || []).some((g) => groups.has(g))) { hot.add(i); on.add(e.from); on.add(e.to); }
      });
    } else {
      for (const dir of ["from", "to"]) {
        const stack = [id];
        while (stack.length) {
          const cur = stack.pop();
          edges.forEach((e, i) => {
            const [a, b] = dir === "from" ? [e.from, e.to] : [e.to, e.from];
            if (a === cur) { hot.add(i); if (!on.has(b)) { on.add(b); stack.push(b); } }
          });
        }
      }
    }
  }
  $$(".node", wrap).forEach((n) => n.classList.toggle("hot", on.has(n.dataset.id) && !!id));
  $$("path", wrap).forEach((p) => p.classList.toggle("hot", hot.has(Number(p.dataset.i))));
}

function drawEdges(wrap) {
  const svg = $("svg.edges", wrap);
  if (!svg || !wrap.offsetParent) return;
  const box = wrap.getBoundingClientRect();
  const pos = {};
  $$(".node", wrap).forEach((n) => { pos[n.dataset.id] = n.getBoundingClientRect(); });
  svg.replaceChildren();
  (wrap._edges || []).forEach((e, i) => {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) return;
    const x1 = a.right - box.left, y1 = a.top + a.height / 2 - box.top;
    const x2 = b.left - box.left, y2 = b.top + b.height / 2 - box.top;
    const dx = Math.max(20, (x2 - x1) / 2);
    svg.append(svgEl("path", {d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
      class: e.status === "error" ? "error" : "", "data-i": i}));
  });
}
function drawAllEdges() { $$(".diagram").forEach(drawEdges); }
window.addEventListener("resize", () => requestAnimationFrame(drawAllEdges));

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

// --------------------------------------------------------------------------------------- policies
function renderPolicies() {
  const d = data.policies;
  if (!d || d.error) return failed(d) || [];
  if (!d.available) {
    return h("div", {class: "panel"}, h("div", {class: "head"}, "NetworkPolicies"), h("div", {class: "empty"}, d.reason));
  }
  const chosen = new Set(d.selected);
  const chips = d.namespaces.map((ns) => h("span", {class: "chip" + (chosen.has(ns.name) ? " on" : ""),
    onclick: () => {
      const next = new Set(chosen);
      if (next.has(ns.name)) next.delete(ns.name); else next.add(ns.name);
      ui.policyNs = next; ui.cell = null; ui.cellExplain = null;
      setHash({ns: Array.from(next).join(",")});
      load("policies").then(() => { delete $("#view-policies").dataset.rendered; render(); });
    }}, `${ns.name} `, h("span", {class: "sub"}, ns.pods)));
  const port = h("input", {value: ui.policyPort, title: "PORT[/TCP|UDP|SCTP] or icmp", onchange: (e) => {
    ui.policyPort = e.target.value.trim() || "80/TCP"; ui.cell = null; ui.cellExplain = null;
    setHash({port: ui.policyPort});
    load("policies").then(() => { delete $("#view-policies").dataset.rendered; render(); });
  }});
  const controls = h("div", {class: "controls"}, h("span", {class: "sub"}, "Namespaces"), chips,
    h("span", {class: "sub", style: "margin-left:12px"}, "Port"), port);
  const pods = d.pods;
  let matrix;
  if (d.problem) matrix = h("div", {class: "reason warn"}, d.problem);
  else if (!pods.length) matrix = h("div", {class: "empty"}, "No pods with an address in the chosen namespaces.");
  else {
    const head = h("tr", null, h("th", {class: "from"}, h("span", {class: "sub"}, "from ↓ to →")),
      pods.map((p) => h("th", {class: "to", title: p.key}, p.key)));
    const body = pods.map((src, i) => h("tr", {"data-search": src.key}, h("th", {class: "from", title: `${src.ip} on ${src.node}`}, src.key),
      pods.map((dst, j) => {
        const yes = d.allowed[i][j];
        const sel = ui.cell && ui.cell[0] === src.key && ui.cell[1] === dst.key;
        return h("td", {class: `c ${yes ? "yes" : "no"}${sel ? " sel" : ""}`, title: `${src.key} → ${dst.key}: ${yes ? "allowed" : "denied"}`,
          "data-from": src.key, "data-to": dst.key, onclick: () => explainCell(src.key, dst.key)}, yes ? "✓" : "✕");
      })));
    matrix = h("div", null, h("table", {class: "matrix", id: "matrix"}, h("thead", null, head), h("tbody", null, body)),
      h("div", {class: "legend"}, h("span", null, st("ok", "allowed")), h("span", null, st("error", "denied")),
        h("span", null, `new connections on ${d.port}; click a cell for the rules that decide it`)));
  }
  const box = h("div", {class: "explain-box", id: "cell-explain"}, ui.cellExplain ? [
    h("div", {class: "verdict"}, st(ui.cellExplain.allowed ? "ok" : "error", ui.cellExplain.allowed ? "ALLOWED" : "DENIED"),
      h("span", {class: "q"}, `${ui.cell[0]} → ${ui.cell[1]} ${d.port}`)),
    h("pre", null, ui.cellExplain.lines.join("\n")),
    h("div", {class: "sub"}, "Same answer as ", mono(`pyk3s netpol explain --json ${ui.cell[0]} ${ui.cell[1]} ${d.port}`)),
    h("button", {class: "ghost", style: "margin-top:8px", onclick: () => runTrace(`${ui.cell[0]} -> ${ui.cell[1]}:${d.port.toLowerCase() === "icmp" ? "icmp" : d.port}`)}, "trace this connection"),
  ] : h("div", {class: "sub"}, "Click a cell: which policy isolates each side, and which rule allows the connection (or that none does)."));
  const policies = d.policies.map((p) => h("tr", {"data-search": `${p.key} ${p.podSelector} ${p.selects.join(" ")}`},
    h("td", null, h("b", null, mono(p.key))), h("td", null, mono(p.podSelector || "(all pods)")), h("td", null, p.types.join(", ")),
    h("td", null, `${p.ingressRules} in, ${p.egressRules} out`), h("td", null, p.selects.length ? mono(p.selects.join(", ")) : h("span", {class: "sub"}, "no pod")),
    h("td", null, p.problem ? h("span", {class: "why"}, p.problem) : st("ok", "ok"))));
  return [
    h("div", {class: "panel"}, h("div", {class: "head"}, "Reachability", h("span", {class: "sub"},
      "every pod of the chosen namespaces to every other, as the agents enforce it")), h("div", {class: "body"}, controls,
      h("div", {class: "matrix-wrap", style: "margin-top:14px"}, matrix, box))),
    h("div", {class: "panel"}, h("div", {class: "head"}, "Policies", h("span", {class: "sub"}, plural(d.policies.length, "policy"))),
      d.policies.length ? h("table", null, h("thead", null, h("tr", null, ["Policy", "Pod selector", "Types", "Rules", "Selects", "State"].map((t) => h("th", null, t)))),
        h("tbody", null, policies)) : h("div", {class: "empty"}, "No NetworkPolicy in these namespaces: every pod accepts and sends everything.")),
  ];
}

async function explainCell(from, to) {
  ui.cell = [from, to];
  const p = new URLSearchParams({from, to, port: data.policies.port});
  try {
    ui.cellExplain = await getJSON("api/policies/explain?" + p.toString());
  } catch (err) {
    ui.cellExplain = {allowed: false, lines: [String(err.message || err)]};
  }
  delete $("#view-policies").dataset.rendered;
  render();
}

// ------------------------------------------------------------------------------------------ nodes
function hostPorts(ports) {
  const byPod = {};
  for (const p of ports) (byPod[p.pod] = byPod[p.pod] || []).push(`${p.port}/${p.protocol}`);
  return Object.entries(byPod).map(([pod, list]) => h("div", {title: pod}, mono(list.join(" ")), " ",
    h("span", {class: "sub"}, pod.split("/")[1].replace(/-[a-z0-9]{5}$/, ""))));
}

function renderNodes() {
  const d = data.nodes;
  if (!d || d.error) return failed(d) || [];
  const rows = d.nodes.map((n) => flashNew("nodes", n.name, h("tr", {"data-search": `${n.name} ${n.addresses.map((a) => a.address).join(" ")} ${n.podCIDRs.join(" ")} ${n.backend.type}`},
    h("td", null, h("b", null, mono(n.name)), h("div", {class: "sub"}, n.roles.join(", "))),
    h("td", null, n.ready ? st("ok", "Ready") : [st("error", "NotReady"), h("div", {class: "why"}, n.readyReason)],
      n.unschedulable ? h("div", null, pill("warn", "cordoned")) : null),
    h("td", null, n.addresses.filter((a) => a.type !== "Hostname").map((a) => h("div", null, mono(a.address), " ", h("span", {class: "sub"}, a.type)))),
    h("td", {class: "nowrap"}, n.podCIDRs.length ? n.podCIDRs.map((c) => h("div", null, mono(c))) : "-"),
    h("td", null, h("b", null, n.backend.type), n.backend.publicIP ? [" ", mono(n.backend.publicIP)] : null, h("div", {class: "sub"}, n.backend.source)),
    h("td", null, `${n.podsReady}/${n.pods}`),
    h("td", null, n.hostPorts.length ? hostPorts(n.hostPorts) : h("span", {class: "sub"}, "-")),
    h("td", null, n.taints.length ? mono(n.taints.join(", ")) : h("span", {class: "sub"}, "-"), h("div", {class: "sub"}, n.version)))));
  doneFlash("nodes");
  return h("div", {class: "panel"}, h("div", {class: "head"}, "Nodes", h("span", {class: "sub"}, plural(d.nodes.length, "node"))),
    h("table", null, h("thead", null, h("tr", null, ["Node", "State", "Addresses", "Pod CIDRs", "Pod network", "Pods ready", "Host ports held", "Taints · version"].map((t) => h("th", null, t)))),
      h("tbody", null, rows)));
}

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
    node: "tab=nodes", pod: `tab=services`, entrypoint: "tab=ingress", middleware: "tab=ingress", iservice: "tab=ingress"}[kind];
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

// ----------------------------------------------------------------------------------------- search
function applySearch() {
  const q = ui.search.trim().toLowerCase();
  const view = $(`#view-${ui.tab}`);
  const words = q.split(/\s+/).filter(Boolean);
  const hit = (el) => !words.length || words.every((w) => (el.dataset.search || "").toLowerCase().includes(w));
  $$("[data-search]", view).forEach((el) => {
    if (el.classList.contains("node")) el.classList.toggle("dim", !hit(el));
    else el.classList.toggle("hide", !hit(el));
  });
  $$(".panel.ns", view).forEach((p) => p.classList.toggle("hide", words.length > 0 && !$$("tr.row:not(.hide)", p).length));
  if (ui.tab !== "overview") requestAnimationFrame(drawAllEdges);
}

// -------------------------------------------------------------------------------------- navigation
function renderTab() {
  const p = params();
  ui.tab = ["overview", "services", "ingress", "policies", "nodes"].includes(p.get("tab")) ? p.get("tab") : "overview";
  delete $(`#view-${ui.tab}`).dataset.rendered;
  render();
  examples();
}

function fromHash() {
  const p = params();
  if (p.get("ns")) ui.policyNs = new Set(p.get("ns").split(",").filter(Boolean));
  if (p.get("port")) ui.policyPort = p.get("port");
  if (p.get("search")) { ui.search = p.get("search"); $("#search").value = ui.search; }
}

function setTheme(dark) {
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  try { localStorage.setItem("pyk3s-map-theme", dark ? "dark" : "light"); } catch (e) { /* private mode */ }
  requestAnimationFrame(drawAllEdges);
}

function init() {
  fromHash();
  if (params().get("theme")) setTheme(params().get("theme") === "dark");
  $("#theme").addEventListener("click", () => setTheme(document.documentElement.dataset.theme !== "dark"));
  $("#search").addEventListener("input", (e) => { ui.search = e.target.value; applySearch(); });
  $("#trace-q").addEventListener("input", (e) => { $("#trace-kind").textContent = classify(e.target.value); });
  $("#trace-form").addEventListener("submit", (e) => { e.preventDefault(); runTrace($("#trace-q").value); });
  window.addEventListener("hashchange", renderTab);
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (e.key === "/" && !typing) { e.preventDefault(); $("#search").focus(); }
    else if (e.key === "t" && !typing) setTheme(document.documentElement.dataset.theme !== "dark");
    else if (e.key === "Escape" && typing) document.activeElement.blur();
  });
  loadAll().then(() => {
    renderTab();
    const q = params().get("q");
    if (q) runTrace(q);
  });
  connect();
}

init();
