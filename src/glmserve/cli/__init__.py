"""The `glmserve` command line."""

import os

# llama.cpp's CPU threads are an OpenMP (libgomp) team, which reads OMP_WAIT_POLICY when it loads,
# so it is set here, before anything imports xllamacpp; a value the user set is kept. Measured on
# 2 cores (4 greedy streams of 128 tokens): the 1.5B alone decodes at 35 tok/s, beside the loaded
# 0.5B at 28 (24 with "passive"), and at 35 again with "active", which costs an idle server about
# 1% of a core.
os.environ.setdefault("OMP_WAIT_POLICY", "active")

from glmserve.cli.main import main

__all__ = ["main"]
