"""What each name runs and samples with: ``GET /models/{id}`` shows the generation defaults."""

from __future__ import annotations

from openai import OpenAI

from glmserve.engines.llamacpp.models import QWEN_CODER_05B, QWEN_CODER_15B

from .server_process import GlmServe


def test_retrieve_shows_the_packaged_models_defaults(client: OpenAI) -> None:
    for name, model in [
        ("glm-4.6", QWEN_CODER_15B),
        ("glm-4.5-air", QWEN_CODER_15B),
        ("glm-4.5-flash", QWEN_CODER_05B),
    ]:
        card = client.models.retrieve(name).to_dict()
        assert card["generation_defaults"] == model.sampling.as_dict(), name
        assert card["generation_defaults"], "a packaged model ships measured defaults"


def test_the_list_stays_lean(client: OpenAI) -> None:
    assert all("generation_defaults" not in m.to_dict() for m in client.models.list())


def test_both_packaged_models_are_assembled_in_the_data_dir(server: GlmServe) -> None:
    for model in (QWEN_CODER_15B, QWEN_CODER_05B):
        path = model.path(server.data_dir)
        assert path.stat().st_size == model.size, path
