// Building the page without ever parsing data as HTML.
//
// h(tag, props, ...children): children that are strings or numbers become text nodes, so model
// output, key names and stored content are always inert text. `on*` props are listeners; an
// `href` is kept only when it is a path or fragment of this origin (never `javascript:` or an
// outside address). Nothing in the console uses innerHTML, insertAdjacentHTML or document.write.

const SAFE_HREF = /^(#|\/(?!\/))/;

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value === "function") el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "href") {
      if (SAFE_HREF.test(String(value))) el.setAttribute("href", value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  return append(clear(el), children);
}

export function badge(text, tone = "neutral") {
  return h("span", { class: `badge badge-${tone}` }, text);
}

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

export function fmtTime(epochS) {
  if (!epochS) return "—";
  const d = new Date(epochS * 1000);
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function fmtPct(part, whole) {
  if (!whole) return "—";
  return `${((100 * part) / whole).toFixed(1)} %`;
}

// Copy text: the async clipboard where the page may use it, else a selected hidden field.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

export function copyButton(getText, label = "Copy") {
  const button = h("button", { class: "btn btn-small", type: "button" }, label);
  button.addEventListener("click", async () => {
    const ok = await copyText(typeof getText === "function" ? getText() : getText);
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control,
    hint ? h("span", { class: "field-hint" }, hint) : null);
}

export function emptyState(title, text) {
  return h("div", { class: "empty" }, h("h3", {}, title), text ? h("p", {}, text) : null);
}
