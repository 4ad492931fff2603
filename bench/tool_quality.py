"""Tool-calling and structured-output quality of glmserve's embedded model (not a speed benchmark).

    .venv/bin/python bench/tool_quality.py [--data-dir DIR] [--max-tokens N]

Starts ``glmserve serve`` on a free port (the model is assembled into the data dir on first use),
then sends, greedy and one at a time:

* 20 prompts (Chinese and English) with eight functions offered and ``tool_choice: "required"``:
  how many calls parse and validate against their function's schema (the grammar should make this
  20/20), and how many picked the function the prompt asks for;
* the same 20 prompts with ``tool_choice: "auto"``: how often the model chose to call a tool at all,
  and how often it chose the right one with valid arguments;
* 10 ``response_format: json_schema`` requests: how often the content validated.

Prints a table and writes ``bench/results/tool-quality-<date>.json`` with every request and answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import string
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from processes import free_port, server_process

HERE = Path(__file__).resolve().parent
MODEL = "glm-4.6"
# OpenAI's spec: "Omitting `parameters` defines a function with an empty parameter list."
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
CURRENCIES = ["CNY", "USD", "EUR", "JPY", "GBP"]


def _fn(name: str, description: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "description": description}
    if parameters is not None:
        spec["parameters"] = parameters
    return {"type": "function", "function": spec}


def _obj(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


TOOLS = [
    _fn(
        "get_weather",
        "获取指定城市的天气信息",
        _obj(
            ["city"],
            city={"type": "string", "description": "城市名称"},
            unit={"type": "string", "enum": ["celsius", "fahrenheit"]},
        ),
    ),
    _fn(
        "convert_currency",
        "Convert an amount of money from one currency to another",
        _obj(
            ["amount", "from_currency", "to_currency"],
            amount={"type": "number", "exclusiveMinimum": 0},
            from_currency={"type": "string", "enum": CURRENCIES},
            to_currency={"type": "string", "enum": CURRENCIES},
        ),
    ),
    _fn(
        "send_email",
        "Send an email",
        _obj(
            ["to", "subject", "body"],
            to={"type": "string", "description": "recipient address"},
            subject={"type": "string"},
            body={"type": "string"},
            cc={"type": "array", "items": {"type": "string"}},
        ),
    ),
    _fn(
        "search",
        "Search the web",
        _obj(
            ["query", "category"],
            query={"type": "string"},
            category={"type": "string", "enum": ["news", "images", "videos", "shopping", "general"]},
        ),
    ),
    _fn("get_time", "Get the current local time", None),
    _fn(
        "set_alarm",
        "设置闹钟",
        _obj(
            ["hour", "minute"],
            hour={"type": "integer", "minimum": 0, "maximum": 23},
            minute={"type": "integer", "minimum": 0, "maximum": 59},
            label={"type": "string"},
        ),
    ),
    _fn(
        "translate_text",
        "Translate text into another language",
        _obj(
            ["text", "target_language"],
            text={"type": "string"},
            target_language={"type": "string", "enum": ["en", "zh", "ja", "fr", "de"]},
        ),
    ),
    _fn(
        "create_event",
        "Create a calendar event",
        _obj(
            ["title", "date", "duration_minutes"],
            title={"type": "string"},
            date={"type": "string", "description": "YYYY-MM-DD"},
            duration_minutes={"type": "integer", "minimum": 1},
            all_day={"type": "boolean"},
        ),
    ),
]
SCHEMAS = {t["function"]["name"]: t["function"].get("parameters", EMPTY_PARAMETERS) for t in TOOLS}

# (prompt, the function it asks for)
TOOL_PROMPTS = [
    ("北京今天天气怎么样？", "get_weather"),
    ("What's the weather like in Paris in fahrenheit?", "get_weather"),
    ("上海明天会下雨吗？", "get_weather"),
    ("Convert 250 US dollars to euros.", "convert_currency"),
    ("100人民币能换多少日元？", "convert_currency"),
    ("How much is 19.99 GBP in CNY?", "convert_currency"),
    ("Send an email to alice@example.com with subject 'Lunch' saying I'll be 10 minutes late.", "send_email"),
    ("给 bob@example.com 发一封邮件，主题是会议纪要，内容是请查收附件。", "send_email"),
    ("Search the news for the latest Mars rover discoveries.", "search"),
    ("帮我搜索一下便宜的机械键盘购物信息。", "search"),
    ("Find me videos about how to bake sourdough bread.", "search"),
    ("What time is it now?", "get_time"),
    ("现在几点了？", "get_time"),
    ("Set an alarm for 6:30 in the morning labelled 'gym'.", "set_alarm"),
    ("帮我定一个晚上10点15分的闹钟。", "set_alarm"),
    ("Translate 'good morning, how are you?' into Japanese.", "translate_text"),
    ("把“我爱编程”翻译成英语。", "translate_text"),
    ("Create a calendar event 'Dentist' on 2025-03-14 lasting 45 minutes.", "create_event"),
    ("在2025-05-01创建一个名为“团队建设”的全天活动，时长480分钟。", "create_event"),
    ("I need to tell carol@example.com that the report is ready; subject 'Report'.", "send_email"),
]


def _closed(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {**_obj(required, **properties), "additionalProperties": False}


_STR = {"type": "string"}
# (prompt, schema)
JSON_CASES: list[tuple[str, dict[str, Any]]] = [
    ("Describe a fictional person.", _closed(["name", "age"], name=_STR, age={"type": "integer"})),
    (
        "一个篮子里有3个苹果，又放进去5个，现在有几个？",
        _closed(
            ["answer", "unit"], answer={"type": "integer"}, unit={"type": "string", "enum": ["个", "斤"]}
        ),
    ),
    (
        "Classify the sentiment of: 'The food was cold and the waiter was rude.'",
        _closed(["sentiment"], sentiment={"type": "string", "enum": ["positive", "neutral", "negative"]}),
    ),
    (
        "List three primary colors.",
        _closed(["colors"], colors={"type": "array", "items": _STR, "minItems": 3, "maxItems": 3}),
    ),
    (
        "给出一道家常菜的菜谱。",
        _closed(
            ["dish", "ingredients", "minutes"],
            dish=_STR,
            ingredients={"type": "array", "items": _STR, "minItems": 1, "maxItems": 6},
            minutes={"type": "integer", "minimum": 1},
        ),
    ),
    (
        "Is 17 a prime number? Explain briefly.",
        _closed(
            ["is_prime", "reason"], is_prime={"type": "boolean"}, reason={"type": "string", "maxLength": 100}
        ),
    ),
    (
        "What is the boiling point of water in Celsius and Fahrenheit?",
        _closed(["celsius", "fahrenheit"], celsius={"type": "number"}, fahrenheit={"type": "number"}),
    ),
    (
        "Extract the meeting from: 'Sync with Dana on Friday at 3pm in room 4B.'",
        _closed(
            ["who", "when", "where"],
            who=_STR,
            when=_closed(["day", "hour"], day=_STR, hour={"type": "integer", "minimum": 0, "maximum": 23}),
            where=_STR,
        ),
    ),
    (
        "中国人口最多的三个城市是哪些？",
        _closed(
            ["cities"],
            cities={
                "type": "array",
                "maxItems": 3,
                "items": _closed(["name", "province"], name=_STR, province={"type": ["string", "null"]}),
            },
        ),
    ),
    (
        "Rate the movie 'Inception' from 1 to 5 and give one tag.",
        _closed(
            ["rating", "tag"],
            rating={"type": "integer", "minimum": 1, "maximum": 5},
            tag={"type": "string", "enum": ["sci-fi", "drama", "comedy", "horror"]},
        ),
    ),
]


@dataclass
class Outcome:
    kind: str  # "required", "auto" or "json_schema"
    prompt: str
    expected: str | None
    status: int
    finish_reason: str | None = None
    called: str | None = None  # the first function called, if any
    output: str | None = None  # arguments or content
    valid: bool = False  # parsed and validated against its schema
    errors: list[str] | None = None
    seconds: float = 0.0


def schema_errors(text: str | None, schema: dict[str, Any]) -> list[str]:
    try:
        value = json.loads(text or "")
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    return [e.message for e in Draft202012Validator(schema).iter_errors(value)]


def post(http: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.post("chat/completions", json=body)
    return response, time.perf_counter() - started


def tool_case(http: httpx.Client, prompt: str, expected: str, choice: str, max_tokens: int) -> Outcome:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "tools": TOOLS,
        "tool_choice": choice,
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    response, seconds = post(http, body)
    outcome = Outcome(choice, prompt, expected, response.status_code, seconds=round(seconds, 2))
    if response.status_code != 200:
        outcome.errors = [response.text[:500]]
        return outcome
    choice_body = response.json()["choices"][0]
    outcome.finish_reason = choice_body["finish_reason"]
    calls = choice_body["message"].get("tool_calls") or []
    if not calls:
        outcome.output = choice_body["message"].get("content")
        outcome.errors = ["no tool call"]
        return outcome
    errors: list[str] = []
    for call in calls:
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        schema = SCHEMAS.get(name)
        found = [f"unknown function {name}"] if schema is None else schema_errors(arguments, schema)
        errors += [f"{name}: {e}" for e in found]
    outcome.called = calls[0]["function"]["name"]
    outcome.output = calls[0]["function"]["arguments"]
    outcome.valid, outcome.errors = not errors, errors or None
    return outcome


def json_case(http: httpx.Client, prompt: str, schema: dict[str, Any], max_tokens: int) -> Outcome:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Out", "schema": schema, "strict": True},
        },
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    response, seconds = post(http, body)
    outcome = Outcome("json_schema", prompt, None, response.status_code, seconds=round(seconds, 2))
    if response.status_code != 200:
        outcome.errors = [response.text[:500]]
        return outcome
    choice = response.json()["choices"][0]
    outcome.finish_reason, outcome.output = choice["finish_reason"], choice["message"]["content"]
    errors = schema_errors(outcome.output, schema)
    outcome.valid, outcome.errors = not errors, errors or None
    return outcome


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    def of(kind: str) -> list[Outcome]:
        return [o for o in outcomes if o.kind == kind]

    required, auto, structured = of("required"), of("auto"), of("json_schema")
    return {
        "required": {
            "requests": len(required),
            "valid_calls": sum(o.valid for o in required),
            "right_function": sum(o.called == o.expected for o in required),
        },
        "auto": {
            "requests": len(auto),
            "called_a_tool": sum(o.called is not None for o in auto),
            "right_function_and_valid": sum(o.called == o.expected and o.valid for o in auto),
            "invalid_calls": sum(o.called is not None and not o.valid for o in auto),
        },
        "json_schema": {"requests": len(structured), "valid": sum(o.valid for o in structured)},
        "http_errors": sum(o.status != 200 for o in outcomes),
    }


def table(summary: dict[str, Any]) -> str:
    req, auto, js = summary["required"], summary["auto"], summary["json_schema"]
    rows = [
        ("tool_choice=required: arguments parse + validate", req["valid_calls"], req["requests"]),
        ("tool_choice=required: the intended function", req["right_function"], req["requests"]),
        ("tool_choice=auto: a tool was called", auto["called_a_tool"], auto["requests"]),
        (
            "tool_choice=auto: intended function, valid args",
            auto["right_function_and_valid"],
            auto["requests"],
        ),
        ("tool_choice=auto: calls with invalid arguments", auto["invalid_calls"], auto["called_a_tool"]),
        ("response_format=json_schema: content validates", js["valid"], js["requests"]),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'check':{width}}  result", f"{'-' * width}  ------"]
    lines += [f"{name:{width}}  {hit:>2}/{total}" for name, hit, total in rows]
    lines.append(f"HTTP errors: {summary['http_errors']}")
    return "\n".join(lines)


def run_all(base: str, key: str, max_tokens: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{base}/api/paas/v4/", headers=headers, timeout=600) as http:
        for choice in ("required", "auto"):
            for i, (prompt, expected) in enumerate(TOOL_PROMPTS, 1):
                outcome = tool_case(http, prompt, expected, choice, max_tokens)
                mark = "ok " if outcome.valid else "BAD"
                print(
                    f"[{choice:8} {i:2}/{len(TOOL_PROMPTS)}] {mark} {outcome.called}: {outcome.output}",
                    flush=True,
                )
                outcomes.append(outcome)
        for i, (prompt, schema) in enumerate(JSON_CASES, 1):
            outcome = json_case(http, prompt, schema, max_tokens * 2)
            mark = "ok " if outcome.valid else "BAD"
            print(f"[json     {i:2}/{len(JSON_CASES)}] {mark} {outcome.output!r}", flush=True)
            outcomes.append(outcome)
    return outcomes


def api_key() -> str:
    alnum = string.ascii_letters + string.digits
    return f"{secrets.token_hex(16)}.{''.join(secrets.choice(alnum) for _ in range(16))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--max-tokens", type=int, default=96, help="per tool request; json_schema gets twice")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    port, key = free_port(), api_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
    env.update(GLMSERVE_DATA_DIR=str(data_dir), GLMSERVE_API_KEY=key)
    base = f"http://127.0.0.1:{port}"
    cmd = [Path(sys.executable).parent / "glmserve", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = data_dir / "logs" / f"tool-quality-{dt.datetime.now():%Y%m%d-%H%M%S}.log"
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    print(f"starting glmserve (log: {log})", flush=True)
    with server_process(cmd, env=env, health_url=f"{base}/health", log_path=log) as startup_s:
        outcomes = run_all(base, key, args.max_tokens)
    summary = summarise(outcomes)
    today = dt.date.today().isoformat()
    results = {
        "date": today,
        "started_at": started_at,
        "machine": {"cpu_count": os.cpu_count(), "loadavg_end": os.getloadavg()},
        "settings": {"model": MODEL, "max_tokens": args.max_tokens, "temperature": 0, "startup_s": startup_s},
        "tools": TOOLS,
        "summary": summary,
        "outcomes": [asdict(o) for o in outcomes],
    }
    path = args.out_dir / f"tool-quality-{today}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(summary))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
