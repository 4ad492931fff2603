"""One JSON access-log line and one metrics count per HTTP request (``FrontDoor`` calls it).

The line names the route *template* (``/admin/keys/{key_id}``), never the raw path or query,
and no header: so it cannot carry a key, a secret or a token, wherever a client put one. The
caller's key id (not secret) comes from ``state.key_id``, set once the request authenticated.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Scope

from glmserve.metrics import Metrics

ACCESS_LOGGER = "glmserve.access"
UNMATCHED = "unmatched"


def configure_access_log() -> None:
    """Access lines go to stderr as bare JSON, whatever the format of the other log lines."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class AccessLog:
    """Records each finished request: the HTTP count, and the line when the log is enabled."""

    def __init__(self, metrics: Metrics, enabled: bool = True) -> None:
        self.metrics = metrics
        self.enabled = enabled
        self.log = logging.getLogger(ACCESS_LOGGER)

    def record(self, scope: Scope, status: int, size: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        self.metrics.http.inc((scope["method"], route, str(status)))
        if self.enabled:
            self.log.info("%s", orjson.dumps(entry(scope, route, status, size, elapsed)).decode())


def entry(scope: Scope, route: str, status: int, size: int, elapsed: float) -> dict[str, Any]:
    state = scope.get("state", {})
    client = scope.get("client")
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": state.get("request_id"),
        "method": scope["method"],
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "bytes": size,
        "key_id": state.get("key_id"),
        "model": state.get("model"),
        "client": client[0] if client else None,
    }
