// Playground: pick a model, set a system prompt and parameters, chat over several turns with the
// answer streamed (thinking apart, collapsible), tools as JSON with their calls shown, images for
// models that can see, and per answer the usage, time to first token and tokens per second.

import { api } from "../api.js";
import { streamAnswer } from "../chat/answer.js";
import { codeDialog } from "../chat/code_dialog.js";
import { buildBody } from "../chat/request.js";
import { readSettings, restore, settingsForm, snapshot } from "../chat/settings.js";
import { messageView, paint } from "../chat/transcript.js";
import { emptyState, h, replace } from "../dom.js";

const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const PROMPT = "Message the model… (Ctrl+Enter sends)";
// The conversation and settings live as long as the tab, across page changes.
const kept = { transcript: [], settings: null };

export function render(view, { actions }) {
  const playground = new Playground(view, actions);
  return () => playground.leave();
}

class Playground {
  constructor(view, actions) {
    this.images = [];
    this.running = null;
    this.models = new Map();
    this.modelSelect = h("select", { name: "model", id: "model" });
    this.form = settingsForm(this.modelSelect);
    this.transcript = h("div", { class: "transcript", id: "transcript" });
    this.prompt = h("textarea", { id: "prompt", rows: 3, placeholder: PROMPT });
    this.sendButton = h("button", { class: "btn btn-primary", type: "button", id: "send", onclick: () => this.send() }, "Send");
    this.attach = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp,image/gif", id: "attach",
      class: "offscreen", multiple: true, onchange: () => this.addImages() });
    this.attachLabel = h("label", { class: "btn btn-ghost", for: "attach", id: "attach-label" }, "Attach image");
    this.chips = h("div", { class: "chips", id: "attachments" });
    this.error = h("div", { class: "form-error", id: "playground-error", role: "alert" });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.send();
      }
    });
    this.modelSelect.addEventListener("change", () => this.visionCheck());
    replace(actions,
      h("button", { class: "btn btn-ghost", type: "button", id: "new-chat", onclick: () => this.reset() }, "New chat"),
      h("button", { class: "btn", type: "button", id: "copy-as-code", onclick: () => this.copyAsCode() }, "Copy as code"));
    const composer = h("div", { class: "composer" }, this.prompt,
      h("div", { class: "composer-row" }, h("div", { class: "composer-left" }, this.attach, this.attachLabel, this.chips),
        this.error, this.sendButton));
    replace(view, h("div", { class: "playground" },
      h("div", { class: "chat-column card" }, this.transcript, composer),
      h("div", { class: "settings-column card" }, this.form)));
    restore(this.form, kept.settings);
    this.drawTranscript();
    this.loading = new AbortController();
    this.loadModels();
  }

  async loadModels() {
    try {
      const list = await api("/v1/models", { signal: this.loading.signal });
      const chat = list.data.filter((m) => (m.capabilities?.kind || "chat") === "chat"); // not embedding or rerank
      replace(this.modelSelect, chat.map((m) => h("option", { value: m.id }, m.capabilities?.vision ? `${m.id}  (vision)` : m.id)));
      for (const m of chat) this.models.set(m.id, m);
      if (this.models.has(kept.settings?.model)) this.modelSelect.value = kept.settings.model;
      this.visionCheck();
    } catch (exc) {
      if (exc.name !== "AbortError") this.error.textContent = `Could not list the models: ${exc.message}`;
    }
  }

  visionCheck() {
    const vision = Boolean(this.models.get(this.modelSelect.value)?.capabilities?.vision);
    this.attach.disabled = !vision;
    this.attachLabel.classList.toggle("disabled", !vision);
    this.attachLabel.title = vision ? "Attach an image" : "This model does not accept images";
    if (!vision && this.images.length) this.setImages([]);
  }

  async addImages() {
    this.error.textContent = "";
    const added = [];
    for (const file of this.attach.files) {
      if (file.size > MAX_IMAGE_BYTES) this.error.textContent = `${file.name} is over 5 MB`;
      else added.push(await dataUrl(file));
    }
    this.attach.value = "";
    this.setImages([...this.images, ...added]);
  }

  setImages(images) {
    this.images = images;
    replace(this.chips, images.map((url, i) => h("span", { class: "chip" }, h("img", { src: url, alt: "", class: "chip-img" }),
      h("button", { type: "button", class: "chip-x", "aria-label": "remove image",
        onclick: () => this.setImages(images.filter((_, j) => j !== i)) }, "×"))));
  }

  drawTranscript() {
    if (!kept.transcript.length) {
      replace(this.transcript, emptyState("Start a conversation",
        "Pick a model, type a message and press Send. Answers stream in as they are written."));
    } else {
      replace(this.transcript, kept.transcript.map(messageView));
      this.transcript.scrollTop = this.transcript.scrollHeight;
    }
    this.placeholder();
  }

  placeholder() {
    const call = this.awaitedToolCall();
    this.prompt.placeholder = call ? `Result of ${call.function?.name || "the tool"} (${call.id}) — sent as a tool message` : PROMPT;
  }

  // After an answer with tool calls, each next message is the result of the first call not yet answered.
  awaitedToolCall() {
    let index = kept.transcript.length - 1;
    const answered = new Set();
    while (index >= 0 && kept.transcript[index].role === "tool") answered.add(kept.transcript[index--].tool_call_id);
    const answer = kept.transcript[index];
    if (answer?.role !== "assistant" || !answer.tool_calls?.length) return null;
    return answer.tool_calls.find((c) => !answered.has(c.id)) || null;
  }

  nextMessage(text) {
    const call = this.awaitedToolCall();
    if (call) return { role: "tool", tool_call_id: call.id, content: text };
    return { role: "user", content: text, images: this.images.length ? [...this.images] : undefined };
  }

  async send() {
    if (this.running) return this.running.abort();
    this.error.textContent = "";
    if (!this.prompt.value.trim() && !this.images.length) return;
    const message = this.nextMessage(this.prompt.value);
    let settings;
    let body;
    try {
      settings = readSettings(this.form);
      body = buildBody(settings, [...kept.transcript, message]);
    } catch (exc) {
      this.error.textContent = exc.message;
      return;
    }
    const answer = { role: "assistant", model: settings.model, content: "", reasoning: "", streaming: true };
    kept.transcript.push(message, answer);
    this.setImages([]);
    this.prompt.value = "";
    this.drawTranscript();
    await this.run(body, answer);
  }

  async run(body, answer) {
    this.running = new AbortController();
    this.sendButton.textContent = "Stop";
    this.sendButton.classList.add("btn-danger");
    try {
      await streamAnswer(body, answer, this.running.signal, () => {
        paint(answer);
        this.transcript.scrollTop = this.transcript.scrollHeight;
      });
    } finally {
      answer.streaming = false;
      paint(answer);
      this.running = null;
      this.sendButton.textContent = "Send";
      this.sendButton.classList.remove("btn-danger");
      this.placeholder();
    }
  }

  copyAsCode() {
    try {
      const draft = this.prompt.value.trim() ? [this.nextMessage(this.prompt.value)] : [];
      codeDialog(buildBody(readSettings(this.form), [...kept.transcript, ...draft]));
    } catch (exc) {
      this.error.textContent = exc.message;
    }
  }

  reset() {
    if (this.running) this.running.abort();
    kept.transcript = [];
    this.drawTranscript();
  }

  leave() {
    this.loading.abort();
    if (this.running) this.running.abort();
    kept.settings = snapshot(this.form);
  }
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
