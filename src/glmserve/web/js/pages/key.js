// One key's page: its settings, budget used, rotate/revoke and its daily usage. A user key asking
// for another key's page gets what the API answers: "no such API key".

import { api } from "../api.js";
import { emptyState, fmtInt, fmtMs, fmtPct, fmtTime, h, replace } from "../dom.js";
import { keyActions, limitsText, modelsList, statusBadge } from "./keys.js";

export function render(view, { id, title }) {
  const notice = h("div", { id: "key-notice", class: "slot" });
  const body = h("div", { class: "key-page" });
  replace(view, h("a", { href: "#/keys", class: "back" }, "← All keys"), notice, body);
  const load = async () => {
    let key;
    try {
      key = await api(`/admin/keys/${encodeURIComponent(id)}`);
    } catch (exc) {
      const text = exc.status === 404 ? "There is no such key, or this key may not see it." : exc.message;
      replace(body, h("div", { class: "card" }, emptyState(exc.status === 404 ? "No such API key" : "Could not load the key", text)));
      return;
    }
    title.textContent = key.name ? `API key “${key.name}”` : "API key";
    const daily = await api("/admin/usage/daily", { query: { key_id: key.id, limit: 400 } }).catch(() => ({ data: [] }));
    replace(body, details(key, load, notice), usageCard(key, daily.data));
  };
  load();
}

function details(key, reload, notice) {
  const rows = [
    ["Key id", h("span", { class: "mono" }, key.id)],
    ["Status", statusBadge(key.status)],
    ["Role", key.role],
    ["Models", modelsList(key.models)],
    ["Limits", limitsText(key)],
    ["Budget used", key.budget_tokens ? `${fmtInt(key.budget_used)} of ${fmtInt(key.budget_tokens)} tokens` : "—"],
    ["Created", `${fmtTime(key.created_at)}${key.created_by ? ` by ${key.created_by}` : ""}`],
    ["Expires", fmtTime(key.expires_at)],
    ["Revoked", fmtTime(key.revoked_at)],
    ["Old secret valid until", fmtTime(key.previous_secret_valid_until)],
  ];
  return h("div", { class: "card", id: "key-details" },
    h("div", { class: "card-head" }, h("h2", {}, key.name || "(unnamed)"),
      key.status === "revoked" ? null : keyActions(key, reload, notice)),
    h("dl", { class: "props" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])));
}

function usageCard(key, days) {
  const link = h("a", { href: `#/usage?key_id=${encodeURIComponent(key.id)}`, class: "btn btn-small" }, "Requests of this key");
  if (!days.length) {
    return h("div", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Usage by day"), link),
      emptyState("No requests yet", "This key has not been used."));
  }
  const head = h("tr", {}, ["Day", "Model", "Requests", "Errors", "Prompt", "Completion", "Cache hits", "Mean latency"].map((t) => h("th", {}, t)));
  const rows = days.map((d) => h("tr", {},
    h("td", { class: "nowrap" }, d.day), h("td", {}, d.model), h("td", { class: "num" }, fmtInt(d.requests)),
    h("td", { class: "num" }, `${fmtInt(d.errors)} (${fmtPct(d.errors, d.requests)})`),
    h("td", { class: "num" }, fmtInt(d.prompt_tokens)), h("td", { class: "num" }, fmtInt(d.completion_tokens)),
    h("td", { class: "num" }, fmtInt(d.cache_hits)), h("td", { class: "num" }, fmtMs(d.mean_latency_ms))));
  return h("div", { class: "card table-card" }, h("div", { class: "card-head" }, h("h2", {}, "Usage by day"), link),
    h("table", { class: "table" }, h("thead", {}, head), h("tbody", {}, rows)));
}
