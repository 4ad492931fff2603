"""Reasoning parsers: a dict and a decorator; one file per format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from glmserve.engines.base import Event

REASONING_PARSERS: dict[str, Callable[[], ReasoningParser]] = {}


class ReasoningParser(Protocol):
    def feed(self, text: str) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


def register(name: str) -> Callable[[Callable[[], ReasoningParser]], Callable[[], ReasoningParser]]:
    def add(factory: Callable[[], ReasoningParser]) -> Callable[[], ReasoningParser]:
        REASONING_PARSERS[name] = factory
        return factory

    return add


def reasoning_parser_names() -> frozenset[str]:
    from glmserve.parsers.reasoning import think_tags  # noqa: F401  (registers the formats)

    return frozenset(REASONING_PARSERS)


def get_reasoning_parser(name: str) -> ReasoningParser:
    reasoning_parser_names()
    return REASONING_PARSERS[name]()
