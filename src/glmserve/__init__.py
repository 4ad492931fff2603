"""glmserve: a self-hosted server for the OpenAI-compatible Zhipu BigModel API (v4)."""

__version__ = "0.1.0"
