"""The seam between a front-end and serving: a ``Plan`` in, and a ``Rendering`` for the answer.

A front-end parses its wire format and resolves everything that can be refused (the model, the
schemas, tool_choice, images for a blind model, message order) *before* it hands a ``Plan`` to
serving, so an invalid request never spends a rate-limit slot, tokens or budget. Serving knows no
wire format: it admits, generates and meters, and asks the front-end's ``Rendering`` to turn the
event stream into that protocol's JSON body or SSE frames.

A ``Plan`` carries a chat ``Generation``; a ``TaskPlan`` carries the other work an engine
capability does (an ``EmbeddingJob``, a ``RerankJob``, a ``CompletionJob``) and takes the same
path: admission, the engine (a deployment chain, if the model has one), the meter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from glmserve.accounting.limits import worst_case_tokens
from glmserve.engines.base import CompletionJob, EmbeddingJob, Event, Generation, RerankJob
from glmserve.errors import GlmError
from glmserve.serving.model_router import Route


@dataclass(slots=True)
class Plan:
    """A request that has passed every check a front-end can make.

    ``model`` is the name the client asked for (echoed back and recorded); ``route`` is what it
    resolved to, once. ``protocol`` names the front-end on the usage row. ``content`` renders the
    request's input for usage rows that keep content (only called when configured).
    """

    route: Route
    model: str
    generation: Generation
    stream: bool
    protocol: str
    request_id: str
    content: Callable[[], str] | None = None

    def tokens_at_most(self) -> int:
        """What admission reserves (TPM, budget) until the real use is known."""
        return worst_case_tokens(self.generation, self.route.context_window)


Task = EmbeddingJob | RerankJob | CompletionJob


@dataclass(slots=True)
class TaskPlan:
    """Non-chat work for a route's engine capability; ``tokens`` is its checked upper bound."""

    route: Route
    model: str
    task: Task
    tokens: int
    protocol: str
    request_id: str
    stream: bool = False
    content: Callable[[], str] | None = None

    def tokens_at_most(self) -> int:
        return self.tokens


AnyPlan = Plan | TaskPlan


class Rendering(Protocol):
    """How one request's events become its protocol's answer (one instance per request).

    Non-stream: ``body`` receives every event and returns the JSON body. Stream: ``open`` runs
    once the first event exists (errors before it still get a real HTTP status), ``encode`` for
    each event, ``close`` after the last one, ``fail`` for an error after the stream began.
    """

    media_type: str

    async def body(self, events: list[Event]) -> Any: ...

    async def open(self) -> list[bytes]: ...

    def encode(self, event: Event) -> list[bytes]: ...

    async def close(self) -> list[bytes]: ...

    def fail(self, error: GlmError) -> list[bytes]: ...
