/* The NetworkPolicy view: the reachability matrix and the explanation of a cell. */
"use strict";

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
