// The console's shell: sign-in, the side bar and a hash router (#/playground, #/keys,
// #/keys/ID, #/usage, #/deployments). Each page is a module whose render(view, params) fills
// `view` and may return a function that stops its timers and requests when the page is left.

import { api, session, whenUnauthorized } from "./api.js";
import { badge, h, replace } from "./dom.js";
import * as deployments from "./pages/deployments.js";
import * as keyPage from "./pages/key.js";
import * as keys from "./pages/keys.js";
import * as playground from "./pages/playground.js";
import * as usage from "./pages/usage.js";

const PAGES = [
  { path: "playground", title: "Playground", page: playground },
  { path: "keys", title: "API keys", page: keys },
  { path: "usage", title: "Usage", page: usage },
  { path: "deployments", title: "Models & deployments", page: deployments },
];
const root = document.getElementById("app");
let leave = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

function signIn(message) {
  stopPage();
  const input = h("input", {
    type: "password",
    id: "signin-key",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "id.secret",
    "aria-label": "API key",
  });
  const error = h("p", { class: "form-error", role: "alert" }, message || "");
  const button = h("button", { class: "btn btn-primary", type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin-card", id: "signin" },
    h("div", { class: "brand brand-large" }, h("span", { class: "brand-mark" }, "g"), "glmserve"),
    h("p", { class: "muted" }, "Sign in with an API key. It stays in this tab only."),
    input,
    error,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    error.textContent = "";
    try {
      const me = await api("/admin/me", { key });
      session.save(key, me);
      input.value = "";
      if (!location.hash || location.hash === "#/") location.hash = "#/playground";
      route();
    } catch (exc) {
      error.textContent = exc.status === 401 ? "This key was refused." : exc.message;
    } finally {
      button.disabled = false;
    }
  });
  replace(root, h("div", { class: "signin" }, form));
  input.focus();
}

function stopPage() {
  if (leave) leave();
  leave = null;
}

function shell(active) {
  const me = session.me;
  const nav = PAGES.map((p) =>
    h("a", { href: `#/${p.path}`, class: p.path === active ? "nav-link active" : "nav-link" }, p.title),
  );
  const who = h(
    "div",
    { class: "who" },
    h("div", { class: "who-name" }, me.name || (me.static ? "static key" : "unnamed key")),
    h("div", { class: "who-id mono" }, me.id),
    badge(me.role, me.role === "admin" ? "accent" : "neutral"),
    h("button", { class: "btn btn-ghost btn-small", type: "button", id: "signout", onclick: signOut }, "Sign out"),
  );
  const title = h("h1", { id: "page-title" });
  const actions = h("div", { class: "topbar-actions" });
  const view = h("section", { class: "content", id: "view" });
  const layout = h(
    "div",
    { class: "layout" },
    h("aside", { class: "sidebar" }, h("div", { class: "brand" }, h("span", { class: "brand-mark" }, "g"), "glmserve"),
      h("nav", {}, nav), who),
    h("main", { class: "main" }, h("header", { class: "topbar" }, title, actions), view),
  );
  replace(root, layout);
  return { title, actions, view };
}

function signOut() {
  session.clear();
  location.hash = "#/";
  signIn();
}

function route() {
  if (!session.key || !session.me) return signIn();
  stopPage();
  const { parts, query } = parseHash();
  const name = parts[0] || "playground";
  const entry = PAGES.find((p) => p.path === name) || PAGES[0];
  const frame = shell(entry.path);
  let page = entry.page;
  let title = entry.title;
  if (entry.path === "keys" && parts[1]) {
    page = keyPage;
    title = "API key";
  }
  frame.title.textContent = title;
  document.title = `${title} · glmserve`;
  leave = page.render(frame.view, { id: parts[1], query, actions: frame.actions, title: frame.title }) || null;
}

whenUnauthorized(() => {
  session.clear();
  signIn("The key was refused (revoked, expired or rotated). Sign in again.");
});
window.addEventListener("hashchange", route);
route();
