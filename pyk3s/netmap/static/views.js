/* The overview, Services and Nodes views. */
"use strict";

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
