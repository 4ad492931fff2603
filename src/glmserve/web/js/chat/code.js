// "Copy as code": the playground's next request as an openai-SDK Python snippet and a curl line,
// pointed at this server. The key is never written into them: both read GLMSERVE_API_KEY.

const IMAGE = /^data:image\/[a-z0-9.+-]+;base64,/i;

export function baseUrl() {
  return `${location.origin}/api/paas/v4/`;
}

// Long inline images would bury the snippet: they are shortened, and said to be.
function shortenImages(value) {
  if (typeof value === "string") return IMAGE.test(value) ? `${value.match(IMAGE)[0]}<…your image…>` : value;
  if (Array.isArray(value)) return value.map(shortenImages);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shortenImages(v)]));
  }
  return value;
}

// A JSON value as a Python literal (JSON string escapes are valid in Python strings).
function py(value, indent = "") {
  const inner = `${indent}    `;
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + py(v, inner)).join(",\n")},\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${py(v, inner)}`).join(",\n")},\n${indent}}`;
}

const SDK_ARGS = new Set(["model", "messages", "temperature", "top_p", "max_tokens", "stop", "seed", "tools",
  "tool_choice", "stream", "stream_options"]);

export function pythonSnippet(body) {
  const request = shortenImages(body);
  const args = [];
  const extra = {};
  for (const [name, value] of Object.entries(request)) {
    if (SDK_ARGS.has(name)) args.push(`    ${name}=${py(value, "    ")},`);
    else extra[name] = value;
  }
  if (Object.keys(extra).length) args.push(`    extra_body=${py(extra, "    ")},`);
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(api_key=os.environ["GLMSERVE_API_KEY"], base_url=${JSON.stringify(baseUrl())})`,
    "stream = client.chat.completions.create(",
    ...args,
    ")",
    "for chunk in stream:",
    "    if chunk.choices:",
    "        delta = chunk.choices[0].delta",
    '        print(getattr(delta, "reasoning_content", None) or delta.content or "", end="", flush=True)',
    "    if chunk.usage:",
    "        print()",
    "        print(chunk.usage)",
    "",
  ].join("\n");
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

export function curlSnippet(body) {
  const json = JSON.stringify(shortenImages(body));
  return [
    `curl -N ${shellQuote(`${baseUrl()}chat/completions`)} \\`,
    `  -H "Authorization: Bearer $GLMSERVE_API_KEY" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(json)}`,
    "",
  ].join("\n");
}
