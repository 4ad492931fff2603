"""The request bodies every contender receives: the same messages, greedy, a fixed token budget.

Each load request carries a tag unique to its (level, index), so no contender can answer it from a
prompt cache warmed by an earlier level; the multi-turn conversation starts from a long catalogue
so that re-sending the growing history shows what the prompt cache saves.
"""

from __future__ import annotations

import random
from typing import Any

TOPICS = (
    "hash maps and open addressing",
    "TCP congestion control",
    "the Raft consensus algorithm",
    "garbage collection in CPython",
    "B-tree indexes in a database",
    "JSON Web Tokens and their pitfalls",
    "rate limiting with a token bucket",
    "Unicode normalisation forms",
    "the HTTP/2 framing layer",
    "memoisation and dynamic programming",
    "SQL window functions",
    "bloom filters",
    "asyncio event loops",
    "public-key cryptography",
    "copy-on-write file systems",
    "regular expression engines",
)

FOLLOW_UPS = (
    "Which three items are the most expensive? Answer with their SKUs and prices.",
    "Write a Python function that returns every item of a given category sorted by price.",
    "Explain how that function handles a category with no items.",
    "Suggest two more items that would fit the catalogue, in the same format.",
    "Summarise our conversation so far in three sentences.",
)

_CATEGORIES = ("tools", "garden", "kitchen", "office", "outdoor", "lighting")
_NOUNS = ("hammer", "lantern", "kettle", "stapler", "tent", "trowel", "lamp", "whisk", "ruler", "hose")
_ADJECTIVES = ("compact", "heavy-duty", "foldable", "stainless", "rechargeable", "ergonomic", "classic")


def load_body(level: int, index: int, max_tokens: int) -> dict[str, Any]:
    """The ``index``-th request of the concurrency ``level`` run."""
    topic = TOPICS[index % len(TOPICS)]
    content = (
        f"[request c{level}-{index}] Write a detailed, step-by-step tutorial about {topic}, "
        "with a commented Python example and a list of common mistakes."
    )
    return chat_body([{"role": "user", "content": content}], max_tokens)


def chat_body(messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    return {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def catalogue(items: int) -> str:
    """A deterministic product list, long enough that its prefill dominates the first turn."""
    rng = random.Random(20240607)
    lines = ["You are a shop assistant. Answer only from this catalogue.", ""]
    for n in range(1, items + 1):
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        price = rng.randint(300, 25000) / 100
        lines.append(
            f"- SKU-{n:03d}: {name}, category {rng.choice(_CATEGORIES)}, "
            f"price {price:.2f} EUR, stock {rng.randint(0, 500)}"
        )
    return "\n".join(lines)


def first_turn(items: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": catalogue(items)},
        {"role": "user", "content": "How many items in the catalogue belong to the category tools?"},
    ]


def follow_up(turn: int) -> dict[str, str]:
    """The user message of turn ``turn`` (2, 3, ...)."""
    return {"role": "user", "content": FOLLOW_UPS[(turn - 2) % len(FOLLOW_UPS)]}
