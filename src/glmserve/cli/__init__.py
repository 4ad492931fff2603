"""The `glmserve` command line."""

from glmserve.cli.main import main

__all__ = ["main"]
