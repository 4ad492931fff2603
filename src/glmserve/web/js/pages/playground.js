// Playground: pick a model, set a system prompt and parameters, chat over several turns with the
// answer streamed (thinking apart, collapsible), tools as JSON with their calls shown, images for
// models that can see, and per answer the usage, time to first token and tokens per second.

import { api, stream } from "../api.js";
import { curlSnippet, pythonSnippet } from "../chat/code.js";
import { buildBody, readSettings } from "../chat/request.js";
import { messageView, paint } from "../chat/transcript.js";
import { copyButton, emptyState, field, h, replace } from "../dom.js";

const EXAMPLE_TOOLS = `[
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
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

// The playground keeps its conversation while the tab lives, across page changes.
const state = { transcript: [], images: [], settings: null };

export function render(view, { actions }) {
  const models = h("select", { name: "model", id: "model" });
  const form = settingsForm(models);
  const transcriptEl = h("div", { class: "transcript", id: "transcript" });
  const prompt = h("textarea", { id: "prompt", rows: 3, placeholder: "Message the model… (Ctrl+Enter sends)" });
  const send = h("button", { class: "btn btn-primary", type: "button", id: "send" }, "Send");
  const attach = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp,image/gif", id: "attach",
    class: "offscreen", multiple: true });
  const attachLabel = h("label", { class: "btn btn-ghost", for: "attach", id: "attach-label" }, "Attach image");
  const chips = h("div", { class: "chips", id: "attachments" });
  const formError = h("div", { class: "form-error", id: "playground-error", role: "alert" });
  const composer = h("div", { class: "composer" }, prompt,
    h("div", { class: "composer-row" }, h("div", { class: "composer-left" }, attach, attachLabel, chips), formError, send));
  let running = null;

  const modelInfo = new Map();
  const visionCheck = () => {
    const vision = Boolean(modelInfo.get(models.value)?.capabilities?.vision);
    attach.disabled = !vision;
    attachLabel.classList.toggle("disabled", !vision);
    attachLabel.title = vision ? "Attach an image" : "This model does not accept images";
    if (!vision && state.images.length) {
      state.images = [];
      drawChips();
    }
  };
  models.addEventListener("change", visionCheck);

  const drawTranscript = () => {
    if (!state.transcript.length) {
      replace(transcriptEl, emptyState("Start a conversation", "Pick a model, type a message and press Send. Answers stream in as they are written."));
      return;
    }
    replace(transcriptEl, state.transcript.map(messageView));
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
  };
  const drawChips = () =>
    replace(chips, state.images.map((url, i) => h("span", { class: "chip" }, h("img", { src: url, alt: "", class: "chip-img" }),
      h("button", { type: "button", class: "chip-x", "aria-label": "remove image", onclick: () => {
        state.images.splice(i, 1);
        drawChips();
      } }, "×"))));

  attach.addEventListener("change", async () => {
    formError.textContent = "";
    for (const file of attach.files) {
      if (file.size > MAX_IMAGE_BYTES) {
        formError.textContent = `${file.name} is over 5 MB`;
        continue;
      }
      state.images.push(await dataUrl(file));
    }
    attach.value = "";
    drawChips();
  });

  const nextMessage = (text) => {
    const call = toolCallAwaitingResult();
    if (call) return { role: "tool", tool_call_id: call.id, content: text };
    return { role: "user", content: text, images: state.images.length ? [...state.images] : undefined };
  };
  const toolCallAwaitingResult = () => {
    // After an answer with tool calls, each next message is the result of the first call not yet answered.
    let index = state.transcript.length - 1;
    const results = new Set();
    while (index >= 0 && state.transcript[index].role === "tool") results.add(state.transcript[index--].tool_call_id);
    const answer = state.transcript[index];
    if (answer?.role !== "assistant" || !answer.tool_calls?.length) return null;
    return answer.tool_calls.find((c) => !results.has(c.id)) || null;
  };
  const placeholder = () => {
    const call = toolCallAwaitingResult();
    prompt.placeholder = call
      ? `Result of ${call.function?.name || "the tool"} (${call.id}) — sent as a tool message`
      : "Message the model… (Ctrl+Enter sends)";
  };
  const sendMessage = async () => {
    if (running) {
      running.abort();
      return;
    }
    formError.textContent = "";
    const text = prompt.value;
    if (!text.trim() && !state.images.length) return;
    let settings;
    let body;
    const message = nextMessage(text);
    try {
      settings = readSettings(form);
      body = buildBody(settings, [...state.transcript, message]);
    } catch (exc) {
      formError.textContent = exc.message;
      return;
    }
    state.transcript.push(message);
    state.images = [];
    drawChips();
    prompt.value = "";
    const answer = { role: "assistant", model: settings.model, content: "", reasoning: "", streaming: true };
    state.transcript.push(answer);
    drawTranscript();
    running = new AbortController();
    send.textContent = "Stop";
    send.classList.add("btn-danger");
    try {
      await streamAnswer(body, answer, running.signal, () => {
        paint(answer);
        transcriptEl.scrollTop = transcriptEl.scrollHeight;
      });
    } finally {
      answer.streaming = false;
      paint(answer);
      running = null;
      send.textContent = "Send";
      send.classList.remove("btn-danger");
      placeholder();
    }
  };
  send.addEventListener("click", sendMessage);
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendMessage();
    }
  });

  const codeButton = h("button", { class: "btn", type: "button", id: "copy-as-code" }, "Copy as code");
  codeButton.addEventListener("click", () => {
    try {
      const draft = prompt.value.trim() ? [nextMessage(prompt.value)] : [];
      const body = buildBody(readSettings(form), [...state.transcript, ...draft]);
      codeDialog(body);
    } catch (exc) {
      formError.textContent = exc.message;
    }
  });
  const reset = h("button", { class: "btn btn-ghost", type: "button", id: "new-chat" }, "New chat");
  reset.addEventListener("click", () => {
    if (running) running.abort();
    state.transcript = [];
    drawTranscript();
    placeholder();
  });
  replace(actions, reset, codeButton);

  replace(view, h("div", { class: "playground" },
    h("div", { class: "chat-column card" }, transcriptEl, composer),
    h("div", { class: "settings-column card" }, form)));
  drawTranscript();
  drawChips();
  placeholder();

  const loading = new AbortController();
  api("/v1/models", { signal: loading.signal })
    .then((list) => {
      replace(models, list.data.map((m) => h("option", { value: m.id }, m.capabilities?.vision ? `${m.id}  (vision)` : m.id)));
      for (const m of list.data) modelInfo.set(m.id, m);
      const saved = state.settings?.model;
      if (saved && modelInfo.has(saved)) models.value = saved;
      visionCheck();
    })
    .catch((exc) => {
      if (exc.name !== "AbortError") formError.textContent = `Could not list the models: ${exc.message}`;
    });
  restore(form);
  return () => {
    loading.abort();
    if (running) running.abort();
    state.settings = snapshot(form);
  };
}

// Stream one answer into `answer`, timing the first token and the rate.
async function streamAnswer(body, answer, signal, update) {
  const started = performance.now();
  let first = null;
  let usage = null;
  let finish = null;
  const calls = [];
  try {
    await stream("/v1/chat/completions", body, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
      for (const choice of chunk.choices || []) {
        const delta = choice.delta || {};
        if (delta.reasoning_content || delta.content || delta.tool_calls) first ??= performance.now();
        if (delta.reasoning_content) answer.reasoning += delta.reasoning_content;
        if (delta.content) answer.content += delta.content;
        for (const part of delta.tool_calls || []) mergeCall(calls, part);
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
      if (calls.length) answer.tool_calls = calls;
      update();
    }, signal);
  } catch (exc) {
    answer.error = exc.name === "AbortError" ? "Stopped." : exc.message;
  }
  const ended = performance.now();
  const generating = first === null ? 0 : (ended - first) / 1000;
  const completion = usage?.completion_tokens || 0;
  answer.stats = {
    usage: usage || {},
    ttft_ms: first === null ? null : first - started,
    total_ms: ended - started,
    tokens_per_s: generating > 0 && completion > 1 ? (completion - 1) / generating : null,
    finish,
  };
}

// The request as code, in a modal with a tab per language and a copy button.
function codeDialog(body) {
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

function mergeCall(calls, part) {
  const index = part.index ?? calls.length;
  const call = (calls[index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
  if (part.id) call.id = part.id;
  if (part.function?.name) call.function.name += part.function.name;
  if (part.function?.arguments) call.function.arguments += part.function.arguments;
}

function settingsForm(models) {
  const input = (name, attrs = {}) => h("input", { name, id: `param-${name}`, autocomplete: "off", ...attrs });
  const system = h("textarea", { name: "system", id: "system", rows: 4, placeholder: "You are a helpful assistant." });
  const tools = h("textarea", { name: "tools", id: "tools", rows: 8, class: "mono", spellcheck: "false",
    placeholder: "[ { \"type\": \"function\", \"function\": { … } } ]" });
  const example = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Insert example");
  example.addEventListener("click", () => (tools.value = EXAMPLE_TOOLS));
  const toolChoice = h("select", { name: "tool_choice", id: "tool_choice" },
    ["auto", "none", "required"].map((v) => h("option", { value: v }, v)));
  const thinking = h("input", { type: "checkbox", name: "thinking", id: "thinking" });
  return h("form", { class: "settings", id: "settings", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "Model"),
    field("Model", models),
    field("System prompt", system),
    h("h2", {}, "Parameters"),
    h("div", { class: "grid-2" },
      field("Temperature", input("temperature", { type: "number", min: 0, max: 2, step: 0.1, placeholder: "0.6" })),
      field("Top p", input("top_p", { type: "number", min: 0, max: 1, step: 0.05, placeholder: "0.95" })),
      field("Max tokens", input("max_tokens", { type: "number", min: 1, step: 1, value: "256" })),
      field("Seed", input("seed", { type: "number", step: 1, placeholder: "random" }))),
    field("Stop sequences", h("textarea", { name: "stop", id: "param-stop", rows: 2, class: "mono", placeholder: "one per line; \\n for a newline" })),
    h("label", { class: "toggle" }, thinking, h("span", {}, "Thinking"), h("span", { class: "field-hint" }, "reasoning shown apart, before the answer")),
    h("details", { class: "tools-box" }, h("summary", {}, "Tools (JSON)"), tools,
      h("div", { class: "tools-row" }, field("Tool choice", toolChoice), example)));
}

const SAVED = ["system", "temperature", "top_p", "max_tokens", "seed", "stop", "tools", "tool_choice"];

function snapshot(form) {
  const out = { model: form.querySelector('[name="model"]').value, thinking: form.querySelector('[name="thinking"]').checked };
  for (const name of SAVED) out[name] = form.querySelector(`[name="${name}"]`).value;
  return out;
}

function restore(form) {
  const saved = state.settings;
  if (!saved) return;
  for (const name of SAVED) form.querySelector(`[name="${name}"]`).value = saved[name];
  form.querySelector('[name="thinking"]').checked = saved.thinking;
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
