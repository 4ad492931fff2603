"""Random identifiers for requests, answers, usage rows and leases, without a syscall each.

``secrets.token_hex`` asks the kernel for its bytes every time (``getrandom``), and on the
2-core VM a syscall is dear: four ids per request (the request id, the completion id, the
usage row, the limiter's lease) were 5% of the event loop's time at 1,400 requests/s (py-spy
``--native``, issue 20). ``hex_id`` draws from the same source, ``os.urandom``, 4 KiB at a
time, so the ids are as unpredictable as before and a refill is one syscall per a few hundred.

The buffer is dropped in a forked child (``os.register_at_fork``), so a parent and its child
never hand out the same ids. Keys, secrets and anything that guards access keep
``secrets`` (``store/keys.py``): an id here names a thing, it does not let anyone in.
"""

from __future__ import annotations

import os
import threading

_REFILL = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def hex_id(nbytes: int = 16) -> str:
    """``nbytes`` random bytes as ``2 * nbytes`` hex digits (what ``secrets.token_hex`` gives)."""
    global _pool, _at
    with _lock:
        end = _at + nbytes
        if end > len(_pool):
            _pool, _at, end = os.urandom(max(_REFILL, nbytes)), 0, nbytes
        chunk, _at = _pool[_at:end], end
    return chunk.hex()


def _forget() -> None:
    global _pool, _at, _lock
    _lock = threading.Lock()
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget)
