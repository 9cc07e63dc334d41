/* pyk3s map: the page. Plain JavaScript, no build step: the scripts share one global scope and
   are loaded in order (dom, diagram, views, ingress, policies, trace, map). Data comes from /api/* (the
   same JSON a script can read); /api/watch says which views changed, and only those are fetched again. */
"use strict";

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
