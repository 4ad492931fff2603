// Usage: requests and tokens per day by model or by key (charts of /admin/usage/daily), error
// rates, cache hits, and the recent requests (/admin/usage) filtered by key, model, status and
// request id, a page at a time. A user key sees its own usage only: the API filters it.

import { api, session } from "../api.js";
import { stackedBars } from "../charts.js";
import { badge, emptyState, field, fmtInt, fmtMs, fmtPct, fmtTime, h, replace } from "../dom.js";

const PAGE = 25;
const RANGES = [7, 14, 30, 90];
const STATUSES = [
  ["any status", ""],
  ["2xx ok", "2xx"],
  ["errors (4xx, 5xx)", "error"],
  ["4xx", "4xx"],
  ["5xx", "5xx"],
  ["429 rate limited", "429"],
  ["401 refused key", "401"],
];

// Key ids to names, read once per visit (one request): charts and tables show names, not hex.
let keyNames = new Map();

function keyLabel(id) {
  const name = keyNames.get(id);
  return name ? `${name} · ${id.slice(0, 6)}` : id.slice(0, 12);
}

async function loadKeyNames() {
  try {
    const list = await api("/admin/keys");
    keyNames = new Map(list.data.filter((k) => k.name).map((k) => [k.id, k.name]));
  } catch {
    keyNames = new Map();
  }
}

function dayList(count) {
  const out = [];
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  for (let i = count - 1; i >= 0; i--) out.push(new Date(today - i * 86400000).toISOString().slice(0, 10));
  return out;
}

export function render(view, { query }) {
  const state = { range: 14, group: "model", offset: 0, filters: Object.fromEntries(["key_id", "model", "status", "request_id"].map((k) => [k, query.get(k) || ""])) };
  const cleanups = [];
  const tiles = h("div", { class: "tiles", id: "usage-tiles" });
  const charts = h("div", { class: "charts" });
  const breakdown = h("div", { class: "card table-card", id: "usage-breakdown" });
  const recent = h("div", { class: "card table-card", id: "recent" });
  const range = h("select", { id: "usage-range", "aria-label": "days" }, RANGES.map((d) => h("option", { value: String(d) }, `last ${d} days`)));
  range.value = String(state.range);
  const group = h("select", { id: "usage-group", "aria-label": "group by" }, h("option", { value: "model" }, "by model"), h("option", { value: "key" }, "by key"));
  const controls = h("div", { class: "toolbar" }, range, group,
    state.filters.key_id ? badge(`key ${state.filters.key_id}`, "accent") : null);

  const drawDaily = async () => {
    for (const stop of cleanups.splice(0)) stop();
    const days = dayList(state.range);
    let rows;
    try {
      const answer = await api("/admin/usage/daily", { query: { since: days[0], key_id: state.filters.key_id, limit: 10000 } });
      rows = answer.data;
    } catch (exc) {
      replace(charts, h("div", { class: "card" }, emptyState("Could not read usage", exc.message)));
      return;
    }
    replace(tiles, summaryTiles(rows));
    const by = state.group === "model" ? (r) => r.model : (r) => r.key_id;
    const names = [...new Set(rows.map(by))].sort();
    const index = new Map(days.map((d, i) => [d, i]));
    const series = (metric) => names.map((name) => {
      const values = days.map(() => 0);
      for (const r of rows) if (by(r) === name && index.has(r.day)) values[index.get(r.day)] += metric(r);
      return { label: state.group === "key" ? keyLabel(name) : name, values };
    });
    const requestsChart = h("div", { class: "chart", id: "chart-requests" });
    const tokensChart = h("div", { class: "chart", id: "chart-tokens" });
    replace(charts,
      h("div", { class: "card chart-card" }, h("h2", {}, `Requests per day ${state.group === "model" ? "by model" : "by key"}`), requestsChart),
      h("div", { class: "card chart-card" }, h("h2", {}, `Tokens per day ${state.group === "model" ? "by model" : "by key"}`), tokensChart));
    if (!rows.length) {
      replace(requestsChart, emptyState("No requests in this period"));
      replace(tokensChart, emptyState("No tokens in this period"));
    } else {
      cleanups.push(stackedBars(requestsChart, days, series((r) => r.requests), { valueLabel: "requests" }));
      cleanups.push(stackedBars(tokensChart, days, series((r) => r.total_tokens), { valueLabel: "tokens" }));
    }
    replace(breakdown, breakdownTable(rows, by, state.group));
  };
  range.addEventListener("change", () => {
    state.range = Number(range.value);
    drawDaily();
  });
  group.addEventListener("change", () => {
    state.group = group.value;
    drawDaily();
  });

  const drawRecent = async () => {
    const params = { ...state.filters, limit: PAGE, offset: state.offset };
    const hash = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
    history.replaceState(null, "", `#/usage${hash.toString() ? `?${hash}` : ""}`);
    try {
      const page = await api("/admin/usage", { query: params });
      replace(recent, recentHead(state, drawRecent), requestsTable(page.data), pager(state, page, drawRecent));
    } catch (exc) {
      replace(recent, recentHead(state, drawRecent), emptyState("Could not read the requests", exc.message));
    }
  };
  replace(view, controls, tiles, charts, breakdown, recent);
  loadKeyNames().then(() => {
    drawDaily();
    drawRecent();
  });
  return () => cleanups.forEach((stop) => stop());
}

function plural(n, word) {
  return `${fmtInt(n)} ${word}${n === 1 ? "" : "s"}`;
}

function summaryTiles(rows) {
  const sum = (f) => rows.reduce((acc, r) => acc + f(r), 0);
  const requests = sum((r) => r.requests);
  const errors = sum((r) => r.errors);
  const hits = sum((r) => r.cache_hits);
  const latency = sum((r) => r.mean_latency_ms * r.requests);
  const tile = (id, label, value, sub) => h("div", { class: "tile", id }, h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value), h("div", { class: "tile-sub" }, sub || ""));
  return [
    tile("tile-requests", "Requests", fmtInt(requests), `${plural(new Set(rows.map((r) => r.key_id)).size, "key")} · ${plural(new Set(rows.map((r) => r.model)).size, "model")}`),
    tile("tile-tokens", "Tokens", fmtInt(sum((r) => r.total_tokens)), `${fmtInt(sum((r) => r.prompt_tokens))} prompt · ${fmtInt(sum((r) => r.completion_tokens))} completion`),
    tile("tile-errors", "Error rate", fmtPct(errors, requests), plural(errors, "error")),
    tile("tile-cache", "Cache hits", fmtInt(hits), `${fmtPct(hits, requests)} of requests`),
    tile("tile-latency", "Mean latency", fmtMs(requests ? latency / requests : null), "per request"),
  ];
}

function breakdownTable(rows, by, group) {
  const totals = new Map();
  for (const r of rows) {
    const t = totals.get(by(r)) || { requests: 0, errors: 0, prompt: 0, completion: 0, hits: 0, latency: 0 };
    t.requests += r.requests;
    t.errors += r.errors;
    t.prompt += r.prompt_tokens;
    t.completion += r.completion_tokens;
    t.hits += r.cache_hits;
    t.latency += r.mean_latency_ms * r.requests;
    totals.set(by(r), t);
  }
  const title = h("h2", {}, group === "model" ? "By model" : "By key");
  if (!totals.size) return [title, emptyState("Nothing to break down yet")];
  const head = h("tr", {}, [group === "model" ? "Model" : "Key", "Requests", "Errors", "Error rate", "Prompt tokens", "Completion tokens", "Cache hits", "Mean latency"].map((t) => h("th", {}, t)));
  const body = [...totals].sort((a, b) => b[1].requests - a[1].requests).map(([name, t]) => h("tr", {},
    h("td", {}, group === "key" ? h("a", { href: `#/keys/${encodeURIComponent(name)}`, title: name }, keyLabel(name)) : name),
    h("td", { class: "num" }, fmtInt(t.requests)), h("td", { class: "num" }, fmtInt(t.errors)), h("td", { class: "num" }, fmtPct(t.errors, t.requests)),
    h("td", { class: "num" }, fmtInt(t.prompt)), h("td", { class: "num" }, fmtInt(t.completion)),
    h("td", { class: "num" }, `${fmtInt(t.hits)} (${fmtPct(t.hits, t.requests)})`), h("td", { class: "num" }, fmtMs(t.latency / t.requests))));
  return [h("div", { class: "card-head" }, title), h("table", { class: "table" }, h("thead", {}, head), h("tbody", {}, body))];
}

function recentHead(state, redraw) {
  const input = (name, placeholder) => {
    const el = h("input", { name, id: `filter-${name}`, placeholder, autocomplete: "off", spellcheck: "false" });
    el.value = state.filters[name];
    return el;
  };
  const status = h("select", { name: "status", id: "filter-status" }, STATUSES.map(([label, v]) => h("option", { value: v }, label)));
  status.value = state.filters.status;
  const form = h("form", { class: "filters", id: "recent-filters" },
    session.isAdmin ? field("Key id", input("key_id", "any key")) : null,
    field("Model", input("model", "any model")),
    field("Status", status),
    field("Request id", input("request_id", "exact id")),
    h("div", { class: "filter-actions" }, h("button", { class: "btn btn-primary btn-small", type: "submit" }, "Filter"),
      h("button", { class: "btn btn-ghost btn-small", type: "button", onclick: () => {
        for (const k of Object.keys(state.filters)) state.filters[k] = "";
        state.offset = 0;
        redraw();
      } }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const k of Object.keys(state.filters)) {
      const el = form.querySelector(`[name="${k}"]`);
      if (el) state.filters[k] = el.value.trim();
    }
    state.offset = 0;
    redraw();
  });
  return [h("div", { class: "card-head" }, h("h2", {}, "Recent requests")), form];
}

function statusBadge(status) {
  return badge(String(status), status < 400 ? "ok" : status === 429 ? "warn" : "bad");
}

function requestsTable(rows) {
  if (!rows.length) return emptyState("No requests match", "Change the filters, or send a request from the Playground.");
  const head = h("tr", {}, ["Time (UTC)", "Request id", "Key", "Model", "Deployment", "Status", "Prompt", "Completion", "Latency", "TTFT", ""].map((t) => h("th", {}, t)));
  const body = rows.map((r) => h("tr", { dataset: { requestId: r.request_id } },
    h("td", { class: "nowrap" }, fmtTime(r.created_at)),
    h("td", { class: "mono ellipsis", title: r.request_id }, r.request_id),
    h("td", { class: "nowrap" }, h("a", { href: `#/keys/${encodeURIComponent(r.key_id)}`, title: r.key_id }, keyLabel(r.key_id))),
    h("td", { class: "nowrap" }, r.model), h("td", { class: "mono ellipsis short", title: r.deployment || "" }, r.deployment || "—"),
    h("td", {}, statusBadge(r.status), r.error_code ? h("span", { class: "muted mono" }, ` ${r.error_code}`) : null),
    h("td", { class: "num" }, fmtInt(r.prompt_tokens)), h("td", { class: "num" }, fmtInt(r.completion_tokens)),
    h("td", { class: "num" }, fmtMs(r.latency_ms)), h("td", { class: "num" }, fmtMs(r.ttft_ms)),
    h("td", { class: "tags" }, r.stream ? badge("stream") : null, r.cache_hit ? badge("cache hit", "accent") : null,
      r.usage_estimated ? badge("estimated", "warn") : null)));
  return h("table", { class: "table", id: "requests-table" }, h("thead", {}, head), h("tbody", {}, body));
}

function pager(state, page, redraw) {
  const first = state.offset + 1;
  const last = state.offset + page.data.length;
  const prev = h("button", { class: "btn btn-small", type: "button", id: "page-prev", disabled: state.offset === 0 }, "← Newer");
  const next = h("button", { class: "btn btn-small", type: "button", id: "page-next", disabled: !page.has_more }, "Older →");
  prev.addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    redraw();
  });
  next.addEventListener("click", () => {
    state.offset += PAGE;
    redraw();
  });
  return h("div", { class: "pager" }, h("span", { class: "muted", id: "page-range" }, page.data.length ? `rows ${first}–${last}` : ""), prev, next);
}
