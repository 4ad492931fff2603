"""Answer quality of the seed's examples on each packaged model, with and without its defaults.

    .venv/bin/python bench/quality.py [--models glm-4.6,glm-4.5-flash] [--modes defaults,none]
        [--examples story,poem,thinking,function_call,chatbot] [--seeds 10] [--cap 1200]
        [--concurrency 4] [--sampling JSON] [--tag NAME] [--data-dir DIR]

The seed's openai-SDK examples (``seed_examples.py``: a story at temperature 0.9 / top_p 0.7, a
poem, the thinking loop, the ``get_weather`` call, the ChatBot's three turns) are sent exactly as
written, with **no** ``max_tokens``, plus ``seed`` 1..N so each run is reproducible. Mode
``defaults`` is the shipped model table (each packaged model's generation defaults; ``--sampling
'{"glm-4.6": {...}}'`` tries other values); mode ``none`` serves the same models with
``sampling = {}`` (no defaults: glmserve's sampling before them).

**The cap.** Without ``max_tokens`` a looping generation runs to the end of its context (4,096
tokens a slot), minutes on two cores. So every request is streamed and the *client* closes the
stream after ``--cap`` completion tokens (1,200; streamed deltas, about one token each), counted
as "did not stop"; the request itself stays verbatim. (Streaming changes nothing in what is
generated, and glmserve stops a closed stream's generation at the next token.)

**Statistics, fixed before running**: per model, mode and example, over seeds 1..10: natural-stop
rate (``finish_reason`` ``stop`` or ``tool_calls`` before the cap), median completion tokens,
median distinct-4-gram ratio of the text (unique 4-character windows / all windows; a loop
scores ~0.05, prose ~0.9), median wall time per request (``--concurrency`` requests at once); for
the function call, whether a valid ``get_weather`` call with a 北京 location came back; for the
ChatBot, whether turn 2 recalls 小明. **Targets**, on glm-4.6 with its defaults: the story stops
by itself in ≥ 9 of 10 seeds with median distinct-4-gram ≥ 0.8, and the function call is valid
in ≥ 9 of 10. A missed target prints FAIL.

Writes ``bench/results/quality-<date>[-tag].json`` (every answer) and ``.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import string
import sys
import time
from pathlib import Path
from typing import Any

import openai
from processes import free_port, server_process
from quality_report import summarise, table, targets, write_png
from seed_examples import CHATBOT_TURNS, EXAMPLES, SINGLE

HERE = Path(__file__).resolve().parent
PACKAGED = {
    "glm-4.6": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "glm-4.5-flash": "qwen2.5-coder-0.5b-instruct-q4_k_m",
}
NATURAL = ("stop", "tool_calls")


def distinct_4(text: str) -> float | None:
    """Unique 4-character windows / all windows (None for text under 4 characters)."""
    windows = [text[i : i + 4] for i in range(len(text) - 3)]
    return len(set(windows)) / len(windows) if windows else None


def valid_weather_call(calls: dict[int, dict[str, Any]]) -> bool:
    for call in calls.values():
        if call["name"] != "get_weather":
            continue
        try:
            arguments = json.loads(call["arguments"])
        except json.JSONDecodeError:
            continue
        if isinstance(arguments, dict) and "北京" in str(arguments.get("location", "")):
            return True
    return False


async def one_request(
    client: openai.AsyncOpenAI, model: str, kwargs: dict[str, Any], seed: int, cap: int
) -> dict[str, Any]:
    """One verbatim request, streamed; closed by this client after ``cap`` deltas."""
    started = time.perf_counter()
    content, reasoning, calls = [], [], {}
    finish, usage, deltas = None, None, 0
    stream = await client.chat.completions.create(model=model, stream=True, seed=seed, **kwargs)
    try:
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            for choice in chunk.choices:
                delta = choice.delta
                if delta.reasoning_content:  # sent on every delta (null when none)
                    reasoning.append(delta.reasoning_content)
                    deltas += 1
                if delta.content:
                    content.append(delta.content)
                    deltas += 1
                for tc in delta.tool_calls or ():
                    call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                    call["name"] += (tc.function.name or "") if tc.function else ""
                    call["arguments"] += (tc.function.arguments or "") if tc.function else ""
                finish = choice.finish_reason or finish
            if deltas >= cap and finish is None:
                break
    finally:
        await stream.close()
    text = "".join(content)
    return {
        "seed": seed,
        "finish_reason": finish or "capped",
        "natural_stop": finish in NATURAL,
        "completion_tokens": usage if usage is not None else deltas,
        "wall_s": time.perf_counter() - started,
        "content": text,
        "reasoning": "".join(reasoning),
        "tool_calls": list(calls.values()),
        "distinct_4": distinct_4("".join(reasoning) + text),
        "valid_call": valid_weather_call(calls),
    }


async def chatbot(client: openai.AsyncOpenAI, model: str, seed: int, cap: int) -> dict[str, Any]:
    """The ChatBot class's three turns, each resending the history (capped turns included)."""
    history: list[dict[str, str]] = []
    turns = []
    for user_input in CHATBOT_TURNS:
        history.append({"role": "user", "content": user_input})
        turn = await one_request(client, model, {"messages": list(history)}, seed, cap)
        history.append({"role": "assistant", "content": turn["content"]})
        turns.append(turn)
    text = "\n".join(t["content"] for t in turns)
    return {
        "seed": seed,
        "finish_reason": ",".join(t["finish_reason"] for t in turns),
        "natural_stop": all(t["natural_stop"] for t in turns),
        "completion_tokens": sum(t["completion_tokens"] for t in turns),
        "wall_s": sum(t["wall_s"] for t in turns),
        "content": text,
        "distinct_4": distinct_4(text),
        "recalled_name": "小明" in turns[1]["content"],
        "turns": turns,
    }


async def run_example(
    base_url: str, key: str, model: str, example: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(args.concurrency)
    async with openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=3600) as client:

        async def seeded(seed: int) -> dict[str, Any]:
            async with limit:
                if example == "chatbot":
                    return await chatbot(client, model, seed, args.cap)
                return await one_request(client, model, SINGLE[example], seed, args.cap)

        return list(await asyncio.gather(*(seeded(s) for s in range(1, args.seeds + 1))))


def toml_table(mode: str, models: list[str], sampling: dict[str, dict[str, Any]]) -> str:
    """The model table for ``mode``: the packaged models with their defaults, tried ones or none."""
    lines = []
    for name in models:
        lines += ["[[models]]", f'name = "{name}"', f'packaged = "{PACKAGED[name]}"']
        chosen = {} if mode == "none" else sampling.get(name)
        if chosen is not None:
            lines.append("[models.sampling]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in chosen.items()]
        lines.append("")
    return "\n".join(lines)


def api_key() -> str:
    alnum = string.ascii_letters + string.digits
    return f"{secrets.token_hex(16)}.{''.join(secrets.choice(alnum) for _ in range(16))}"


def serve_mode(mode: str, args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    data_dir = args.data_dir.resolve()
    port, key = free_port(), api_key()
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}"
    config = data_dir / "logs" / f"quality-{mode}-{stamp}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(toml_table(mode, args.models, args.sampling), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
    env.update(GLMSERVE_DATA_DIR=str(data_dir), GLMSERVE_API_KEY=key, GLMSERVE_CACHE__ENABLED="false")
    if args.threads:  # beside busy neighbours 1 thread beats 2 (README, Benchmarks)
        env.update(
            GLMSERVE_ENGINE__THREADS=str(args.threads), GLMSERVE_ENGINE__BATCH_THREADS=str(args.threads)
        )
    cmd = [Path(sys.executable).parent / "glmserve", "serve", "--port", str(port), "--config", str(config)]
    base = f"http://127.0.0.1:{port}"
    with server_process(cmd, env=env, health_url=f"{base}/health", log_path=config.with_suffix(".log")):
        for model in args.models:
            for example in args.examples:
                started = time.perf_counter()
                results = asyncio.run(run_example(f"{base}/api/paas/v4/", key, model, example, args))
                elapsed = time.perf_counter() - started
                runs += [{"model": model, "mode": mode, "example": example, **r} for r in results]
                stops = sum(r["natural_stop"] for r in results)
                print(
                    f"{mode:8} {model:14} {example:14} {stops}/{len(results)} stopped  {elapsed:6.0f}s",
                    flush=True,
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--models", type=lambda s: s.split(","), default=list(PACKAGED))
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["defaults", "none"])
    parser.add_argument("--examples", type=lambda s: s.split(","), default=list(EXAMPLES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--cap", type=int, default=1200, help="completion tokens before the client closes")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (4 slots a model)")
    parser.add_argument("--sampling", type=json.loads, default={}, help='{"glm-4.6": {"top_k": 20, ...}}')
    parser.add_argument("--threads", type=int, default=0, help="engine threads (0: glmserve's default)")
    parser.add_argument("--tag", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    today = dt.date.today().isoformat()
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    loadavg_start = os.getloadavg()
    for mode in args.modes:
        serve_mode(mode, args, runs)
    summary = summarise(runs)
    verdicts = targets(summary)
    results = {
        "date": today,
        "machine": {
            "cpu_count": os.cpu_count(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg(),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out_dir")},
        "wall_s": time.perf_counter() - started,
        "summary": summary,
        "targets": verdicts,
        "runs": runs,
    }
    name = f"quality-{today}" + (f"-{args.tag}" if args.tag else "")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_png(summary, args.out_dir / f"{name}.png")
    print(table(summary, verdicts))
    print(f"\nwrote {path} and {name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
