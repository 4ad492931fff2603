// The playground's settings panel: model, system prompt, parameters, thinking and tools; read as
// typed (empty means "leave it to the server"), and kept across page changes.

import { field, h } from "../dom.js";

export const EXAMPLE_TOOLS = `[
  {
    "type": "function",
    "function": {
      "name": "get_weather",
      "description": "Get the current weather of a city",
      "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
      }
    }
  }
]`;
const KEPT = ["system", "temperature", "top_p", "max_tokens", "seed", "stop", "tools", "tool_choice"];

function control(form, name) {
  return form.querySelector(`[name="${name}"]`);
}

export function settingsForm(models) {
  const input = (name, attrs = {}) => h("input", { name, id: `param-${name}`, autocomplete: "off", ...attrs });
  const tools = h("textarea", { name: "tools", id: "tools", rows: 8, class: "mono", spellcheck: "false",
    placeholder: '[ { "type": "function", "function": { … } } ]' });
  const example = h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => (tools.value = EXAMPLE_TOOLS) },
    "Insert example");
  const toolChoice = h("select", { name: "tool_choice", id: "tool_choice" },
    ["auto", "none", "required"].map((v) => h("option", { value: v }, v)));
  return h("form", { class: "settings", id: "settings", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "Model"),
    field("Model", models),
    field("System prompt", h("textarea", { name: "system", id: "system", rows: 4, placeholder: "You are a helpful assistant." })),
    h("h2", {}, "Parameters"),
    h("div", { class: "grid-2" },
      field("Temperature", input("temperature", { type: "number", min: 0, max: 2, step: 0.1, placeholder: "0.6" })),
      field("Top p", input("top_p", { type: "number", min: 0, max: 1, step: 0.05, placeholder: "0.95" })),
      field("Max tokens", input("max_tokens", { type: "number", min: 1, step: 1, value: "256" })),
      field("Seed", input("seed", { type: "number", step: 1, placeholder: "random" }))),
    field("Stop sequences", h("textarea", { name: "stop", id: "param-stop", rows: 2, class: "mono",
      placeholder: "one per line; \\n for a newline" })),
    h("label", { class: "toggle" }, h("input", { type: "checkbox", name: "thinking", id: "thinking" }), h("span", {}, "Thinking"),
      h("span", { class: "field-hint" }, "reasoning shown apart, before the answer")),
    h("details", { class: "tools-box" }, h("summary", {}, "Tools (JSON)"), tools,
      h("div", { class: "tools-row" }, field("Tool choice", toolChoice), example)));
}

export function readSettings(form) {
  const value = (name) => control(form, name).value.trim();
  return {
    model: value("model"),
    system: control(form, "system").value,
    temperature: value("temperature"),
    top_p: value("top_p"),
    max_tokens: value("max_tokens"),
    seed: value("seed"),
    stop: control(form, "stop").value,
    thinking: control(form, "thinking").checked,
    tools: value("tools"),
    tool_choice: value("tool_choice"),
  };
}

export function snapshot(form) {
  const out = { model: control(form, "model").value, thinking: control(form, "thinking").checked };
  for (const name of KEPT) out[name] = control(form, name).value;
  return out;
}

export function restore(form, saved) {
  if (!saved) return;
  for (const name of KEPT) control(form, name).value = saved[name];
  control(form, "thinking").checked = saved.thinking;
}
