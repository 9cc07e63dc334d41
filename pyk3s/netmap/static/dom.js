/* DOM and fetch helpers shared by every part of the page. */
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
