"""The jobs service: the job store, the runner, the worker, files and batches, opened together."""

from __future__ import annotations

from dataclasses import dataclass

from glmserve.accounting.auth import Authenticator
from glmserve.config.settings import Settings
from glmserve.images.inputs import ImageLoader
from glmserve.jobs.batches import Batches
from glmserve.jobs.files import Files
from glmserve.jobs.runner import JobRunner
from glmserve.jobs.worker import JobWorker
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.pipeline import Pipeline
from glmserve.store.batches import BatchStore
from glmserve.store.db import Store
from glmserve.store.files import FileStore
from glmserve.store.jobs import Job, JobStore


@dataclass(slots=True)
class JobsService:
    store: JobStore
    runner: JobRunner
    worker: JobWorker
    files: Files
    batches: Batches

    async def close(self) -> None:
        await self.worker.close()


# A batch line starts only while every generation on its engine has at least this many tokens
# left before its max_tokens: reading a line's prompt takes as long as several decode steps,
# and llama.cpp reads a prompt in one step, so a request that arrives meanwhile waits for it.
# A client whose request is about to finish — an agent loop, a chat — usually sends its next
# one at once.
LEAD_TOKENS = 16


def spare_capacity(router: ModelRouter, job: Job) -> bool:
    """The job's engine has a free slot, no request waiting for one, none before its first
    token and none about to finish (``LEAD_TOKENS``): a batch line's prompt never competes with
    an interactive request's prompt, which is what a user waits for (its time to first token)."""
    try:
        engine = router.resolve(job.model).engine
    except Exception:
        return True  # the runner reports the unknown model
    slots = int(getattr(engine, "slots", 1) or 1)
    busy = int(getattr(engine, "waiting", 0) or 0) + int(getattr(engine, "prefilling", 0) or 0)
    ending = getattr(engine, "ending_within", None)
    if callable(ending) and ending(LEAD_TOKENS):
        return False
    return int(getattr(engine, "in_flight", 0)) < slots and not busy


def open_jobs(
    settings: Settings,
    store: Store,
    pipeline: Pipeline,
    router: ModelRouter,
    images: ImageLoader,
    auth: Authenticator,
) -> JobsService:
    jobs = JobStore(store)
    directory = settings.jobs.files_dir or settings.data_dir / "files"
    files = Files(FileStore(store), directory, settings.jobs.max_file_bytes)
    runner = JobRunner(pipeline, router, images, auth, settings.embeddings.max_inputs)
    batches = Batches(BatchStore(store), jobs, files, runner, settings.jobs.max_batch_lines)
    worker = JobWorker(
        jobs, runner, settings.jobs, endpoint_of=batches.endpoint_of, idle=batches.finalize,
        spare=lambda job: spare_capacity(router, job),
    )  # fmt: skip
    if settings.jobs.enabled:
        worker.start()
    return JobsService(jobs, runner, worker, files, batches)
