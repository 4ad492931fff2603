"""One job through the one pipeline, outside HTTP: its plan, its rendering, its result.

A job's stored request is parsed and planned exactly as its HTTP front-end would
(``frontends.chat.plan.build_plan`` with protocol ``async`` or ``batch``; the embeddings plan), so
limits, metering and usage rows apply unchanged. The usage row's request id is the job's id
(a batch line's is ``<batch id>:<line>``), which tags the row with its batch and lets a resumed
job see that an earlier attempt was already charged: such a job is re-generated uncharged,
past admission and the meter, so no line is ever charged twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from glmserve.accounting.auth import Authenticator, Principal
from glmserve.engines.base import Event
from glmserve.errors import GlmError, InvalidField, InvalidRequest
from glmserve.frontends import embeddings
from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.chat.render import ChatRendering, Envelope
from glmserve.frontends.responses.render import never
from glmserve.frontends.validation import parse
from glmserve.images.inputs import ImageLoader
from glmserve.jobs.endpoints import CHAT, EMBEDDINGS, ENDPOINTS_SAID, canonical_endpoint
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.pipeline import Pipeline, generate, task_events
from glmserve.serving.plan import AnyPlan, Rendering, TaskPlan
from glmserve.store.jobs import Job


class JobRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        router: ModelRouter,
        images: ImageLoader,
        auth: Authenticator,
        max_embedding_inputs: int,
    ) -> None:
        self._pipeline = pipeline
        self._router = router
        self._images = images
        self._auth = auth
        self._max_inputs = max_embedding_inputs

    async def plan(
        self, endpoint: str, body: Any, request_id: str, protocol: str
    ) -> tuple[AnyPlan, Rendering]:
        """The checked plan of one request (raises its 400), and the rendering of its answer."""
        endpoint = canonical_endpoint(endpoint) or endpoint
        if endpoint == EMBEDDINGS:
            emb = parse(embeddings.EmbeddingRequest, body)
            plan: AnyPlan = embeddings.build_plan(emb, self._router, self._max_inputs, request_id)
            plan.protocol = protocol
            return plan, embeddings.EmbeddingsRendering(emb.model, emb.encoding_format)
        if endpoint != CHAT:
            raise InvalidField(f"endpoint must be {ENDPOINTS_SAID}", param="endpoint")
        req = parse(ChatCompletionRequest, body)
        if req.stream:
            raise InvalidField("stream is not supported here; results are fetched later", param="stream")
        chat = await build_plan(req, self._router, self._images, request_id, protocol=protocol)
        envelope = Envelope(id=request_id, request_id=request_id, model=req.model)
        return chat, ChatRendering(envelope, False)

    async def run(self, job: Job, endpoint: str, *, charged: bool) -> tuple[int, dict[str, Any]]:
        """``(status code, body)`` of the job's answer; an error's body is its envelope."""
        try:
            principal = await self._principal(job.key_id)
            plan, rendering = await self.plan(endpoint, job.request, job.id, job.kind)
            if charged:  # an earlier attempt's row is in: generate again, charge nothing
                body = await Pipeline._collect(_uncharged(plan), rendering)
                return 200, dict(body)  # type: ignore[call-overload]
            response = await self._pipeline.serve(principal, plan, rendering, never)
            return response.status_code, orjson.loads(bytes(response.body))
        except GlmError as exc:
            return exc.status, exc.body()

    async def _principal(self, key_id: str) -> Principal:
        found = await self._auth.principal(key_id)
        if found is None:
            raise InvalidRequest("the API key that submitted this job is no longer active")
        return found


def _uncharged(plan: AnyPlan) -> AsyncIterator[Event]:
    """The plan's events straight from its engine: past admission, the cache and the meter."""
    return task_events(plan) if isinstance(plan, TaskPlan) else generate(plan.route, plan.generation)
