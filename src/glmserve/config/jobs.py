"""Settings of the durable jobs: async chat results, uploaded files and batches (``Settings.jobs``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from glmserve.config.strict import Section


class JobSettings(Section):
    """Async chat, files and batches: rows in the database, bytes under ``files_dir``."""

    enabled: bool = Field(True, description="run the job worker in this process")
    result_ttl_s: float = Field(86400.0, gt=0, description="how long an async chat result is kept")
    files_dir: Path | None = Field(None, description="uploads (default data_dir/files); replicas share one")
    max_file_bytes: int = Field(100 * 1024 * 1024, ge=1, description="largest accepted upload")
    max_batch_lines: int = Field(50_000, ge=1, description="requests in one batch input file")
    lease_s: float = Field(60.0, gt=0, description="a claimed job is another worker's after this")
    poll_s: float = Field(0.5, gt=0, description="how often an idle worker looks for work")
