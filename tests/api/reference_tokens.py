"""An independent prompt-token count: the same GGUF loaded in the test process via xllamacpp.

The prompt is rendered by hand in Qwen2.5's ChatML, so a disagreement with the server's
`usage.prompt_tokens` points at the server's template rendering or its counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import xllamacpp

# What Qwen2.5's chat template inserts when the conversation has no system message.
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def render_chatml(messages: Iterable[Mapping[str, str]]) -> str:
    """Qwen2.5 ChatML for plain-text system/user/assistant turns, ready for the assistant's reply."""
    turns = list(messages)
    if not turns or turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": QWEN_DEFAULT_SYSTEM})
    rendered = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in turns)
    return rendered + "<|im_start|>assistant\n"


class TokenCounter:
    """Counts prompt tokens with a one-slot, one-thread xllamacpp server over the given GGUF."""

    def __init__(self, gguf: Path) -> None:
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = 2048
        params.n_parallel = 1
        params.cpuparams.n_threads = 1
        params.verbosity = -1
        self._server = xllamacpp.Server(params)

    def count_text(self, text: str) -> int:
        result = self._server.handle_completions({"prompt": text, "max_tokens": 1})
        return int(result["usage"]["prompt_tokens"])

    def count_chat(self, messages: Iterable[Mapping[str, str]]) -> int:
        return self.count_text(render_chatml(messages))
