// Models and deployments, live from /health: one request per refresh for the whole table (never
// one per row), every few seconds while the page is open and the tab visible.

import { api } from "../api.js";
import { badge, emptyState, fmtInt, fmtPct, fmtTime, h, replace } from "../dom.js";

const EVERY_MS = 5000;

function breakerBadge(state) {
  return badge(state.replace("_", " "), { closed: "ok", half_open: "warn", open: "bad" }[state] || "neutral");
}

function healthBadge(healthy) {
  if (healthy === true) return badge("healthy", "ok");
  if (healthy === false) return badge("unhealthy", "bad");
  return badge("not checked", "neutral");
}

export function render(view, { actions }) {
  const summary = h("div", { class: "tiles", id: "health-tiles" });
  const table = h("div", { class: "card table-card", id: "deployments" });
  const stamp = h("span", { class: "muted", id: "refreshed" });
  const live = h("input", { type: "checkbox", id: "live", checked: true });
  const refresh = h("button", { class: "btn btn-small", type: "button", id: "refresh" }, "Refresh");
  replace(actions, h("label", { class: "toggle toggle-inline" }, live, h("span", {}, "Live")), refresh, stamp);
  replace(view, summary, table);
  let timer = null;
  let inFlight = null;

  const load = async () => {
    if (inFlight) return;
    inFlight = new AbortController();
    try {
      const health = await api("/health", { signal: inFlight.signal });
      replace(summary, tiles(health));
      replace(table, deploymentsTable(health));
      stamp.textContent = `updated ${fmtTime(Date.now() / 1000).slice(11)} UTC`;
      stamp.dataset.refreshes = String(Number(stamp.dataset.refreshes || 0) + 1);
    } catch (exc) {
      if (exc.name !== "AbortError") replace(table, emptyState("The server did not answer /health", exc.message));
    } finally {
      inFlight = null;
    }
  };
  const schedule = () => {
    clearInterval(timer);
    timer = live.checked ? setInterval(() => document.visibilityState === "visible" && load(), EVERY_MS) : null;
  };
  live.addEventListener("change", schedule);
  refresh.addEventListener("click", load);
  load();
  schedule();
  return () => {
    clearInterval(timer);
    if (inFlight) inFlight.abort();
  };
}

function tiles(health) {
  const tile = (id, label, value, sub) => h("div", { class: "tile", id }, h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value), h("div", { class: "tile-sub" }, sub || ""));
  const rows = health.deployments || [];
  const open = rows.filter((d) => d.breaker !== "closed").length;
  const cache = health.cache || {};
  return [
    tile("tile-status", "Server", health.status === "ok" ? "ok" : String(health.status), `${fmtInt(health.models.length)} models`),
    tile("tile-inflight", "In flight", fmtInt(health.in_flight), `${fmtInt(health.waiting)} waiting for a slot`),
    tile("tile-breakers", "Breakers open", fmtInt(open), `of ${fmtInt(rows.length)} upstream deployments`),
    tile("tile-cache", "Response cache", cache.enabled ? "on" : "off", cache.enabled ? `${fmtInt(cache.hits)} hits · ${fmtInt(cache.misses)} misses` : "disabled in the settings"),
  ];
}

function deploymentsTable(health) {
  const byModel = new Map(health.models.map((m) => [m, []]));
  for (const d of health.deployments || []) {
    if (!byModel.has(d.model)) byModel.set(d.model, []);
    byModel.get(d.model).push(d);
  }
  if (!byModel.size) return emptyState("No models are configured");
  const head = h("tr", {}, ["Model", "Deployment", "Kind", "Health", "Breaker", "In flight", "Cooling down", "Requests", "Failures", "Ejections"].map((t) => h("th", {}, t)));
  const body = [];
  for (const [model, rows] of byModel) {
    if (!rows.length) {
      body.push(h("tr", { dataset: { model } }, h("td", { class: "strong" }, model), h("td", { class: "mono" }, "embedded"),
        h("td", {}, "embedded"), h("td", {}, badge("loaded", "ok")), h("td", { class: "muted" }, "—"),
        h("td", { class: "muted", colspan: 5 }, "served directly by the embedded engine (see the server totals above)")));
      continue;
    }
    rows.forEach((d, i) => body.push(h("tr", { dataset: { model, deployment: d.deployment } },
      h("td", { class: "strong" }, i === 0 ? model : ""),
      h("td", { class: "mono" }, d.deployment), h("td", {}, d.kind),
      h("td", {}, healthBadge(d.healthy)), h("td", {}, breakerBadge(d.breaker)),
      h("td", { class: "num" }, fmtInt(d.in_flight)),
      h("td", { class: "num" }, d.cooling_down_s ? `${d.cooling_down_s} s` : "—"),
      h("td", { class: "num" }, fmtInt(d.requests)),
      h("td", { class: "num" }, `${fmtInt(d.failures)} (${fmtPct(d.failures, d.requests)})`),
      h("td", { class: "num" }, d.ejections === undefined ? "—" : fmtInt(d.ejections)))));
  }
  return h("table", { class: "table", id: "deployments-table" }, h("thead", {}, head), h("tbody", {}, body));
}
