"""Chat logprobs between glmserve and llama.cpp: what is asked for, what comes back."""

from __future__ import annotations

from dataclasses import replace

from glmserve.engines.base import Generation, Logprobs, Sampling, Text
from glmserve.engines.llamacpp.translate import to_events, to_request

GEN = Generation(messages=[{"role": "user", "content": "hi"}], sampling=Sampling(0.0, 1.0))


def alt(token: str, logprob: float) -> dict[str, object]:
    return {"id": 1, "token": token, "bytes": list(token.encode()), "logprob": logprob}


def test_asked_for_only_when_wanted_and_never_zero_alternatives() -> None:
    assert "logprobs" not in to_request(GEN)
    assert to_request(replace(GEN, logprobs=4))["top_logprobs"] == 4
    # llama.cpp returns no logprobs at all for top_logprobs 0: ask for one, keep none (below)
    assert to_request(replace(GEN, logprobs=0))["top_logprobs"] == 1


def test_alternatives_are_cut_to_what_was_asked() -> None:
    chosen = {**alt("Hi", -0.2), "top_logprobs": [alt("Hi", -0.2), alt("Yo", -1.9)]}
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": {"content": [chosen]}}]}

    none, one = to_events(chunk, 0), to_events(chunk, 1)

    entry = {"token": "Hi", "logprob": -0.2, "bytes": [72, 105]}
    assert none == [Logprobs(({**entry, "top_logprobs": []},)), Text("Hi")]
    assert one == [Logprobs(({**entry, "top_logprobs": [entry]},)), Text("Hi")]
