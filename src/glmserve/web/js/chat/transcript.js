// One transcript entry on screen, and the live updates of an answer as its stream arrives.
// Everything the model wrote goes in as text nodes (see dom.js): a reply holding HTML or a
// `javascript:` link shows those characters and does nothing.

import { fmtInt, fmtMs, h, replace } from "../dom.js";

const IMAGE = /^data:image\/(png|jpeg|webp|gif);base64,/;

function userView(message) {
  const images = (message.images || [])
    .filter((url) => IMAGE.test(url))
    .map((url) => h("img", { class: "thumb", src: url, alt: "attached image" }));
  return [h("div", { class: "msg-text" }, message.content), images.length ? h("div", { class: "thumbs" }, images) : null];
}

function toolView(message) {
  return [h("div", { class: "msg-sub mono" }, `result of ${message.tool_call_id}`), h("pre", { class: "msg-text mono" }, message.content)];
}

export function messageView(message) {
  const role = message.role;
  const label = { user: "You", assistant: "Assistant", tool: "Tool" }[role] || role;
  const head = h("div", { class: "msg-head" }, h("span", { class: `role role-${role}` }, label),
    message.model ? h("span", { class: "msg-model mono" }, message.model) : null);
  const el = h("article", { class: `msg msg-${role}` }, head);
  if (role === "assistant") {
    message.view = answerView(el);
    paint(message);
  } else {
    el.append(...(role === "tool" ? toolView(message) : userView(message)).filter(Boolean));
  }
  return el;
}

function answerView(el) {
  const thinkingText = h("div", { class: "thinking-text" });
  const thinking = h("details", { class: "thinking", open: true, hidden: true },
    h("summary", {}, "Thinking"), thinkingText);
  const text = h("div", { class: "msg-text answer-text" });
  const calls = h("div", { class: "tool-calls" });
  const error = h("div", { class: "msg-error", role: "alert", hidden: true });
  const meta = h("div", { class: "msg-meta" });
  el.append(thinking, text, calls, error, meta);
  return { thinking, thinkingText, text, calls, error, meta };
}

// Bring an answer's view up to date with its message (called for every streamed chunk).
export function paint(message) {
  const v = message.view;
  if (!v) return;
  if (message.reasoning) {
    v.thinking.hidden = false;
    if (v.thinkingText.textContent !== message.reasoning) v.thinkingText.textContent = message.reasoning;
  }
  if (v.text.textContent !== (message.content || "")) v.text.textContent = message.content || "";
  v.text.classList.toggle("streaming", Boolean(message.streaming));
  replace(v.calls, (message.tool_calls || []).map(callView));
  if (message.error) {
    v.error.hidden = false;
    v.error.textContent = message.error;
  }
  replace(v.meta, metaView(message));
}

function callView(call) {
  return h("div", { class: "tool-call" },
    h("div", { class: "tool-call-head" }, h("span", { class: "tool-call-label" }, "tool call"),
      h("span", { class: "mono tool-call-name" }, call.function?.name || "?"),
      h("span", { class: "mono muted" }, call.id || "")),
    h("pre", { class: "mono tool-call-args" }, call.function?.arguments || ""));
}

function metaView(message) {
  const stats = message.stats;
  if (!stats) return [];
  const usage = stats.usage || {};
  const reasoning = usage.completion_tokens_details?.reasoning_tokens;
  const cached = usage.prompt_tokens_details?.cached_tokens;
  const items = [
    ["prompt", fmtInt(usage.prompt_tokens)],
    ["completion", fmtInt(usage.completion_tokens)],
    reasoning ? ["reasoning", fmtInt(reasoning)] : null,
    cached ? ["cached", fmtInt(cached)] : null,
    ["TTFT", fmtMs(stats.ttft_ms)],
    ["speed", stats.tokens_per_s ? `${stats.tokens_per_s.toFixed(1)} tok/s` : "—"],
    ["total", fmtMs(stats.total_ms)],
    stats.finish ? ["finish", stats.finish] : null,
  ].filter(Boolean);
  return items.map(([name, value]) =>
    h("span", { class: "stat", dataset: { stat: name } }, h("span", { class: "stat-name" }, name), h("span", { class: "stat-value" }, value)));
}
