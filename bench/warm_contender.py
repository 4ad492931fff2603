"""One glmserve hot-path contender in front of a fake upstream of its own, checked and warmed up
(2 s of the same wrk load): what ``gateway_profile.py`` and ``gateway_cpu.py`` both measure."""

from __future__ import annotations

import argparse
import os
import profile as spy_report
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import hot_path
import hot_path_contenders
import wrk_load
from hot_path_contenders import Endpoint
from processes import free_port, server_process


@dataclass(frozen=True)
class Warmed:
    endpoint: Endpoint
    body: dict[str, Any]  # the request wrk sends
    pid: int  # glmserve's
    upstream_pid: int  # the fake's


@contextmanager
def warmed(args: argparse.Namespace, log_name: str) -> Iterator[Warmed]:
    """``args``: ``contender``, ``stream``, ``connections`` and what the contender needs."""
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    fake = [sys.executable, str(hot_path.FAKE), "--port", str(port), "--chunks", "16"]
    log = args.data_dir / "logs" / f"{log_name}-fake-upstream.log"
    with (
        server_process(fake, env=dict(os.environ), health_url=f"{upstream}/models", log_path=log),
        hot_path_contenders.glmserve(args.contender, args, upstream) as endpoint,
    ):
        hot_path.check(endpoint)
        body = {"model": endpoint.models["ok"], "messages": hot_path.MESSAGES, "stream": args.stream}
        wrk_load.run(endpoint.url, body, endpoint.headers, args.connections, 2)
        pid = spy_report.server_pid(int(endpoint.url.split(":")[2].split("/")[0]))
        yield Warmed(endpoint, body, pid, spy_report.server_pid(port))
