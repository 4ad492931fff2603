// The playground's settings (as read by settings.js) and transcript as one chat-completions request body.

function number(text, name, integer) {
  if (text === "") return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be ${integer ? "an integer" : "a number"}`);
  }
  return n;
}

function stops(text) {
  const lines = text
    .split("\n")
    .map((s) => s.replace(/\\n/g, "\n").replace(/\\t/g, "\t"))
    .filter((s) => s !== "");
  if (lines.length === 0) return undefined;
  return lines.length === 1 ? lines[0] : lines;
}

export function parseTools(text) {
  if (!text) return undefined;
  let tools;
  try {
    tools = JSON.parse(text);
  } catch (exc) {
    throw new Error(`tools is not JSON: ${exc.message}`);
  }
  if (!Array.isArray(tools)) throw new Error("tools must be a JSON array of tool definitions");
  return tools;
}

// A transcript entry as the API takes it back (reasoning is not sent again).
function wire(message) {
  if (message.role === "assistant") {
    const out = { role: "assistant", content: message.content || "" };
    if (message.tool_calls?.length) out.tool_calls = message.tool_calls;
    return out;
  }
  if (message.role === "tool") {
    return { role: "tool", tool_call_id: message.tool_call_id, content: message.content };
  }
  if (message.images?.length) {
    const parts = [{ type: "text", text: message.content }];
    for (const url of message.images) parts.push({ type: "image_url", image_url: { url } });
    return { role: "user", content: parts };
  }
  return { role: "user", content: message.content };
}

export function buildBody(settings, transcript) {
  const messages = [];
  if (settings.system.trim()) messages.push({ role: "system", content: settings.system });
  for (const message of transcript) if (!message.error) messages.push(wire(message));
  const body = { model: settings.model, messages, stream: true };
  const optional = {
    temperature: number(settings.temperature, "temperature"),
    top_p: number(settings.top_p, "top_p"),
    max_tokens: number(settings.max_tokens, "max_tokens", true),
    seed: number(settings.seed, "seed", true),
    stop: stops(settings.stop),
    thinking: settings.thinking ? { type: "enabled" } : undefined,
    tools: parseTools(settings.tools),
  };
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) body[name] = value;
  if (body.tools && settings.tool_choice) body.tool_choice = settings.tool_choice;
  body.stream_options = { include_usage: true };
  return body;
}
