// API keys: the list (an admin sees every key, a user key only itself: the API decides), create
// with limits and models (the secret shown once, with a copy button), revoke, rotate with grace.

import { api, session } from "../api.js";
import { badge, copyButton, emptyState, field, fmtInt, fmtTime, h, replace } from "../dom.js";

const GRACE = [
  ["no grace: the old secret stops now", 0],
  ["1 hour", 3600],
  ["1 day", 86400],
  ["7 days", 7 * 86400],
];

export function statusBadge(status) {
  return badge(status, { active: "ok", revoked: "bad", expired: "warn" }[status] || "neutral");
}

export function modelsList(models) {
  if (!models) return h("span", { class: "muted" }, "all models");
  return h("div", { class: "model-chips" }, models.map((m) => h("span", { class: "model-chip mono" }, m)));
}

export function limitsText(key) {
  const parts = [];
  if (key.rpm) parts.push(`${fmtInt(key.rpm)} rpm`);
  if (key.tpm) parts.push(`${fmtInt(key.tpm)} tpm`);
  if (key.concurrency) parts.push(`${key.concurrency} at once`);
  if (key.budget_tokens) parts.push(`${fmtInt(key.budget_tokens)} tokens / ${key.budget_period}`);
  return parts.length ? parts.join(" · ") : "no limits";
}

// The one time a secret is shown: a panel with the key and a copy button.
export function secretPanel(key, what) {
  return h("div", { class: "card secret-panel", id: "secret-panel", role: "status" },
    h("div", { class: "secret-head" }, h("strong", {}, what),
      h("span", { class: "muted" }, "Copy it now: it is shown only this once and cannot be read back.")),
    h("div", { class: "secret-row" }, h("code", { class: "secret mono", id: "secret-value" }, key),
      copyButton(key, "Copy key")));
}

export function render(view, { actions }) {
  const notice = h("div", { id: "key-notice", class: "slot" });
  const formSlot = h("div", { class: "slot" });
  const table = h("div", { class: "card table-card" });
  const admin = session.isAdmin;

  const load = async () => {
    try {
      const list = await api("/admin/keys");
      replace(table, keysTable(list.data, load, notice));
    } catch (exc) {
      replace(table, emptyState("Could not list the keys", exc.message));
    }
  };

  if (admin) {
    const create = h("button", { class: "btn btn-primary", type: "button", id: "create-key" }, "Create key");
    create.addEventListener("click", async () => {
      if (formSlot.firstChild) return replace(formSlot);
      replace(formSlot, await createForm(async (created) => {
        replace(formSlot);
        await load();
        replace(notice, secretPanel(created.key, `Key “${created.name || created.id}” created`));
      }, () => replace(formSlot)));
    });
    replace(actions, create);
  } else {
    replace(actions);
  }
  replace(view, notice, formSlot, table,
    admin ? null : h("p", { class: "muted note" }, "A user key sees and manages only itself."));
  load();
}

function keysTable(keys, reload, notice) {
  if (!keys.length) return emptyState("No keys yet", "Create one with “Create key”. The static key is not listed.");
  const head = h("tr", {}, ["Name", "Key id", "Role", "Status", "Models", "Limits", "Created", "Expires", ""].map((t) => h("th", {}, t)));
  const rows = keys.map((key) => {
    const name = h("a", { href: `#/keys/${encodeURIComponent(key.id)}`, class: "key-name" }, key.name || "(unnamed)");
    const grace = key.previous_secret_valid_until
      ? h("div", { class: "field-hint" }, `old secret until ${fmtTime(key.previous_secret_valid_until)}`)
      : null;
    return h("tr", { dataset: { keyId: key.id } },
      h("td", {}, name),
      h("td", { class: "mono" }, key.id),
      h("td", {}, badge(key.role, key.role === "admin" ? "accent" : "neutral")),
      h("td", {}, statusBadge(key.status), grace),
      h("td", { class: "models-cell" }, modelsList(key.models)),
      h("td", {}, limitsText(key)),
      h("td", { class: "nowrap" }, fmtTime(key.created_at)),
      h("td", { class: "nowrap" }, fmtTime(key.expires_at)),
      h("td", { class: "actions-cell" }, key.status === "revoked" ? null : keyActions(key, reload, notice)));
  });
  return h("table", { class: "table", id: "keys-table" }, h("thead", {}, head), h("tbody", {}, rows));
}

export function keyActions(key, reload, notice) {
  const box = h("div", { class: "row-actions" });
  const revoke = h("button", { class: "btn btn-small btn-ghost danger-text", type: "button", dataset: { action: "revoke" } }, "Revoke");
  let armed = null;
  revoke.addEventListener("click", async () => {
    if (!armed) {
      revoke.textContent = "Confirm revoke";
      revoke.classList.add("btn-danger");
      armed = setTimeout(() => {
        armed = null;
        revoke.textContent = "Revoke";
        revoke.classList.remove("btn-danger");
      }, 5000);
      return;
    }
    clearTimeout(armed);
    revoke.disabled = true;
    try {
      await api(`/admin/keys/${encodeURIComponent(key.id)}/revoke`, { method: "POST" });
      await reload();
      replace(notice, h("div", { class: "card notice" }, `Key ${key.name || key.id} revoked: it is refused from its next request.`));
    } catch (exc) {
      replace(notice, h("div", { class: "card notice notice-bad" }, exc.message));
    }
  });
  const rotate = h("button", { class: "btn btn-small btn-ghost", type: "button", dataset: { action: "rotate" } }, "Rotate");
  rotate.addEventListener("click", () => {
    const grace = h("select", { class: "select-small", "aria-label": "grace period" }, GRACE.map(([label, s]) => h("option", { value: String(s) }, label)));
    grace.value = "86400";
    const go = h("button", { class: "btn btn-small btn-primary", type: "button", dataset: { action: "rotate-confirm" } }, "Rotate now");
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        const rotated = await api(`/admin/keys/${encodeURIComponent(key.id)}/rotate`, { method: "POST", body: { grace_s: Number(grace.value) } });
        await reload(); // first, so that the page shows the grace period when the secret appears
        replace(notice, secretPanel(rotated.key, `New secret for “${rotated.name || rotated.id}”`));
      } catch (exc) {
        replace(notice, h("div", { class: "card notice notice-bad" }, exc.message));
      }
    });
    replace(box, grace, go, h("button", { class: "btn btn-small btn-ghost", type: "button", onclick: () => replace(box, rotate, revoke) }, "Cancel"));
  });
  return replace(box, rotate, revoke);
}

async function createForm(done, cancel) {
  let models = [];
  try {
    models = (await api("/v1/models")).data.map((m) => m.id);
  } catch {
    /* the form works without the list: every model */
  }
  const num = (name, placeholder) => h("input", { type: "number", min: 1, step: 1, name, id: `key-${name}`, placeholder });
  const name = h("input", { name: "name", id: "key-name", maxlength: 128, placeholder: "e.g. team-search", autocomplete: "off" });
  const role = h("select", { name: "role", id: "key-role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
  const period = h("select", { name: "budget_period", id: "key-budget_period" }, h("option", { value: "month" }, "per month"), h("option", { value: "total" }, "in total"));
  const picks = models.map((m) => h("label", { class: "check" }, h("input", { type: "checkbox", value: m, name: "models" }), m));
  const error = h("div", { class: "form-error", role: "alert" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "key-submit" }, "Create key");
  const form = h("form", { class: "card create-form", id: "create-form" },
    h("h2", {}, "New API key"),
    h("div", { class: "grid-3" }, field("Name", name), field("Role", role),
      field("Expires in (days)", h("input", { type: "number", min: 1, step: 1, name: "expires_days", id: "key-expires_days", placeholder: "never" }))),
    h("div", { class: "grid-4" }, field("Requests / minute", num("rpm", "unlimited")), field("Tokens / minute", num("tpm", "unlimited")),
      field("Concurrent requests", num("concurrency", "unlimited")), field("Token budget", num("budget_tokens", "unlimited"))),
    h("div", { class: "grid-3" }, field("Budget period", period)),
    h("div", { class: "field" }, h("span", { class: "field-label" }, "Models"), h("div", { class: "checks" }, picks),
      h("span", { class: "field-hint" }, "None ticked: every model.")),
    error,
    h("div", { class: "form-actions" }, submit, h("button", { class: "btn btn-ghost", type: "button", onclick: cancel }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim() || undefined, role: role.value };
    for (const limit of ["rpm", "tpm", "concurrency", "budget_tokens"]) {
      const value = form.querySelector(`[name="${limit}"]`).value;
      if (value) body[limit] = Number(value);
    }
    if (body.budget_tokens) body.budget_period = period.value;
    const days = form.querySelector('[name="expires_days"]').value;
    if (days) body.expires_in_s = Math.round(Number(days) * 86400);
    const ticked = [...form.querySelectorAll('[name="models"]:checked')].map((c) => c.value);
    if (ticked.length) body.models = ticked;
    submit.disabled = true;
    try {
      done(await api("/admin/keys", { method: "POST", body }));
    } catch (exc) {
      error.textContent = exc.message;
      submit.disabled = false;
    }
  });
  return form;
}
