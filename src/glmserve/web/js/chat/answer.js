// One streamed answer: deltas folded into the transcript entry (reasoning, content, tool calls),
// with the time to first token and the generation rate measured here, in the browser.

import { stream } from "../api.js";

export async function streamAnswer(body, answer, signal, update) {
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
    // The first token's time is the TTFT; the rate counts the tokens after it.
    tokens_per_s: generating > 0 && completion > 1 ? (completion - 1) / generating : null,
    finish,
  };
}

function mergeCall(calls, part) {
  const index = part.index ?? calls.length;
  const call = (calls[index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
  if (part.id) call.id = part.id;
  if (part.function?.name) call.function.name += part.function.name;
  if (part.function?.arguments) call.function.arguments += part.function.arguments;
}
