"""The `glmserve` command line."""

import os

# llama.cpp's CPU threads are OpenMP (libgomp) teams, one per loaded model, and libgomp reads its
# settings when it loads, so they are set here, before anything imports xllamacpp; a value the
# user set is kept. Once the teams of all loaded models outnumber the CPUs (two models on two
# cores), libgomp lets a waiting thread spin only 100 times (1,000 with the "active" policy)
# before it sleeps, so the busy model's threads sleep and wake at every barrier. Measured on 2
# cores (the 1.5B, 128 greedy tokens, 9 runs interleaved): alone 26.5 tok/s; beside a loaded
# 0.5B 19.1, and 24.0 with these two. GOMP_SPINCOUNT bounds "active" to libgomp's default spin
# (300,000, about 3 ms) so an idle server does not spin (0.001 CPU s in 5 idle s); without it
# "active" spins for minutes after each request.
os.environ.setdefault("OMP_WAIT_POLICY", "active")
os.environ.setdefault("GOMP_SPINCOUNT", "300000")

from glmserve.cli.main import main

__all__ = ["main"]
