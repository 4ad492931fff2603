"""Open-connection HTTP load with ``wrk`` (Debian's package ``wrk``): a POST of one JSON body.

``wrk`` keeps ``connections`` keep-alive connections busy for ``seconds``; a streamed answer
counts when its chunked body has ended. A Lua ``done`` hook prints the figures as one JSON line:
requests, seconds, latency percentiles (microseconds) and errors (socket errors plus non-2xx).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRK = shutil.which("wrk")
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("WRKJSON " .. string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean) .. "\\n")
end
"""


class WrkMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkRun:
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
        }


def _lua(body: dict[str, Any], headers: dict[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    for name, value in {"content-type": "application/json", **headers}.items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    return "\n".join(lines) + "\n" + _DONE


def run(url: str, body: dict[str, Any], headers: dict[str, str], connections: int, seconds: float) -> WrkRun:
    if WRK is None:
        raise WrkMissing("wrk is not installed: apt-get install wrk")
    threads = 1 if connections == 1 else 2
    whole_s = max(1, round(seconds))  # wrk takes whole seconds
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(body, headers))
    try:
        done = subprocess.run(
            [WRK, f"-t{threads}", f"-c{connections}", f"-d{whole_s}s", "--timeout", "30s",
             "-s", script.name, url],
            capture_output=True, text=True, timeout=whole_s + 60, check=False,
        )  # fmt: skip
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        said = (done.stderr or done.stdout)[-500:]
        raise RuntimeError(f"wrk printed no figures (exit {done.returncode}): {said}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkRun(
        connections=connections,
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
    )
