// The "Copy as code" modal: a tab per language and a copy button.

import { copyButton, h } from "../dom.js";
import { curlSnippet, pythonSnippet } from "./code.js";

export function codeDialog(body) {
  const snippets = { "Python (openai)": pythonSnippet(body), curl: curlSnippet(body) };
  const code = h("pre", { class: "code mono", id: "code-snippet" });
  const tabs = h("div", { class: "tabs" });
  let current = "Python (openai)";
  const show = (name) => {
    current = name;
    code.textContent = snippets[name];
    for (const tab of tabs.children) tab.classList.toggle("active", tab.textContent === name);
  };
  for (const name of Object.keys(snippets)) {
    tabs.append(h("button", { type: "button", class: "tab", onclick: () => show(name) }, name));
  }
  const dialog = h("dialog", { class: "modal", id: "code-dialog" },
    h("div", { class: "modal-head" }, h("h2", {}, "Copy as code"), tabs),
    h("p", { class: "muted" }, "The next request of this conversation. Set GLMSERVE_API_KEY to your key first."),
    code,
    h("div", { class: "modal-actions" }, copyButton(() => snippets[current], "Copy code"),
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => dialog.close() }, "Close")));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  show(current);
  dialog.showModal();
}
