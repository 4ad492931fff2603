"""The jobs service: the job store, the runner, the worker, files and batches, opened together."""

from __future__ import annotations

from dataclasses import dataclass

from glmserve.accounting.auth import Authenticator
from glmserve.config.settings import Settings
from glmserve.images.inputs import ImageLoader
from glmserve.jobs.runner import CHAT, JobRunner
from glmserve.jobs.worker import JobWorker
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.pipeline import Pipeline
from glmserve.store.db import Store
from glmserve.store.jobs import Job, JobStore


@dataclass(slots=True)
class JobsService:
    store: JobStore
    runner: JobRunner
    worker: JobWorker

    async def close(self) -> None:
        await self.worker.close()


def spare_capacity(router: ModelRouter, job: Job) -> bool:
    """The job's engine has a free slot and no request waiting for one."""
    try:
        engine = router.resolve(job.model).engine
    except Exception:
        return True  # the runner reports the unknown model
    slots = int(getattr(engine, "slots", 1) or 1)
    return int(getattr(engine, "in_flight", 0)) < slots and not int(getattr(engine, "waiting", 0) or 0)


def open_jobs(
    settings: Settings,
    store: Store,
    pipeline: Pipeline,
    router: ModelRouter,
    images: ImageLoader,
    auth: Authenticator,
) -> JobsService:
    jobs = JobStore(store)
    runner = JobRunner(pipeline, router, images, auth, settings.embeddings.max_inputs)

    async def endpoint_of(job: Job) -> str | None:
        return CHAT

    async def idle() -> None:
        return None

    worker = JobWorker(
        jobs, runner, settings.jobs, endpoint_of=endpoint_of, idle=idle,
        spare=lambda job: spare_capacity(router, job),
    )  # fmt: skip
    if settings.jobs.enabled:
        worker.start()
    return JobsService(jobs, runner, worker)
