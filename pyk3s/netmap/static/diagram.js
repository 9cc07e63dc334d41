/* The layered diagram: columns of nodes, edges drawn as SVG curves between them. */
"use strict";

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
