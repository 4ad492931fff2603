"""One Settings object: defaults < TOML config file < environment (GLMSERVE_*) < CLI flags."""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from glmserve.config.accounting import LimitSettings, UsageSettings
from glmserve.config.cache import CacheSettings
from glmserve.config.check import ConfigError, describe, unknown_env
from glmserve.config.deployments import BreakerPolicy, Deployment, RetryPolicy
from glmserve.config.images import ImageSettings
from glmserve.config.jobs import JobSettings
from glmserve.config.strict import Section
from glmserve.engines.generation_defaults import SamplingDefaults
from glmserve.engines.llamacpp.models import DEFAULT_PACKAGED, PACKAGED, QWEN_CODER_05B, packaged
from glmserve.engines.llamacpp.packaged_embeddings import CATALOG
from glmserve.parsers.reasoning import reasoning_parser_names
from glmserve.parsers.tool_calls import FAMILIES

DEFAULT_MODEL = DEFAULT_PACKAGED

_config_file: ContextVar[Path | None] = ContextVar("glmserve_config_file", default=None)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "glmserve"


class ModelEntry(Section):
    """A public model name served by glmserve.

    ``gguf`` is a local GGUF path; ``None`` means the packaged model ``packaged`` (default: the
    quality default, see ``engines.llamacpp.models``). ``deployments`` (embedded or upstream, see
    ``deployment_config``) replace them when given. ``vision``: the model accepts images; unset, it
    does when every deployment can see (see ``accepts_images``). ``sampling``: generation defaults
    for what a request leaves out (``engines.generation_defaults``); unset, a model served only by
    one packaged model gets that model's measured ones, any other none (``{}`` turns them off).
    """

    name: str
    kind: Literal["chat", "embedding", "rerank"] = Field(
        "chat", description="chat, embedding (POST /embeddings) or rerank (POST /rerank)"
    )
    gguf: Path | None = None
    packaged: str | None = Field(None, description="a packaged model's name (instead of gguf)")
    sampling: SamplingDefaults | None = Field(None, description="generation defaults; see above")
    dimensions: list[int] | None = Field(
        None, description="embedding: sizes `dimensions` may ask for, native first (default: the model's)"
    )
    mmproj: Path | None = Field(None, description="with gguf: its multimodal projector (vision)")
    vision: bool | None = Field(None, description="accepts images; default: when every deployment can")
    context_window: int | None = None
    reasoning_parser: str | None = Field(None, description="native reasoning format, e.g. 'think'")
    tool_format: str = Field("qwen", description="tool-call formats the model writes")
    deployments: list[Deployment] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list, description="more names for this model")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)

    @field_validator("reasoning_parser")
    @classmethod
    def _known_parser(cls, name: str | None) -> str | None:
        known = reasoning_parser_names()
        if name is not None and name not in known:
            raise ValueError(f"unknown reasoning parser {name!r}; known: {', '.join(sorted(known))}")
        return name

    @field_validator("tool_format")
    @classmethod
    def _known_tool_format(cls, name: str) -> str:
        if name not in FAMILIES:
            raise ValueError(f"unknown tool format {name!r}; known: {', '.join(sorted(FAMILIES))}")
        return name

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        local = self.gguf is not None or self.mmproj is not None or self.packaged is not None
        if local and self.deployments:
            raise ValueError(f"model {self.name!r}: give gguf/packaged/mmproj or deployments, not both")
        self._check_kind()
        self._check_vision()
        return self

    def _check_kind(self) -> None:
        """A chat model generates; embedding and rerank models come from an embedding GGUF or upstream."""
        embedded = [d for d in self.resolved_deployments() if not d.is_upstream]
        if self.kind == "chat":
            if any(d.packaged in CATALOG for d in embedded) or self.dimensions:
                raise ValueError(
                    f"model {self.name!r}: embedding models and `dimensions` need an embedding kind"
                )
            return
        if any(d.packaged in PACKAGED for d in embedded):
            raise ValueError(f"model {self.name!r}: a packaged chat model cannot serve {self.kind}")
        if self.mmproj is not None or self.vision or any(d.mmproj for d in embedded):
            raise ValueError(f"model {self.name!r}: an {self.kind} model does not see images")
        if any(d.gguf is None and d.packaged is None for d in embedded):
            raise ValueError(
                f"model {self.name!r}: an embedded {self.kind} model needs `packaged` or an embedding `gguf`"
            )

    def _check_vision(self) -> None:
        """Images must never reach a deployment that cannot see them (a silent drop)."""
        if self.vision is False:
            return
        blind = [i for i, d in enumerate(self.resolved_deployments()) if not self._sees(d)]
        if blind and (self.vision or len(blind) < len(self.resolved_deployments())):
            raise ValueError(
                f"model {self.name!r}: deployment(s) {blind} cannot see images; mark every deployment of "
                "a vision model (upstream `vision = true`, embedded `mmproj`) or set `vision = false`"
            )

    def _sees(self, deployment: Deployment) -> bool:
        return deployment.sees_images or (self.vision is True and deployment.is_upstream)

    @property
    def accepts_images(self) -> bool:
        deployments = self.resolved_deployments()
        return self.vision is not False and all(self._sees(d) for d in deployments)

    def resolved_deployments(self) -> list[Deployment]:
        return self.deployments or [
            Deployment(kind="embedded", gguf=self.gguf, packaged=self.packaged, mmproj=self.mmproj)
        ]

    def generation_defaults(self) -> SamplingDefaults | None:
        """The configured ``sampling``, else the packaged model's own where it alone serves the name."""
        if self.sampling is not None:
            return self.sampling
        if self.kind != "chat":
            return None
        deployments = self.resolved_deployments()
        sources = {(d.packaged, d.gguf) for d in deployments}
        if any(d.is_upstream or d.gguf is not None for d in deployments) or len(sources) != 1:
            return None
        return packaged(deployments[0].packaged).sampling


def _embedding_models() -> list[ModelEntry]:
    return [
        ModelEntry(name="embedding-3", kind="embedding", packaged="embeddinggemma-300m",
                   aliases=["text-embedding-3-large"]),
        ModelEntry(name="embedding-2", kind="embedding", packaged="all-minilm-l6-v2",
                   aliases=["text-embedding-3-small", "text-embedding-ada-002"]),
        ModelEntry(name="rerank", kind="rerank", packaged="embeddinggemma-300m"),
    ]  # fmt: skip


def default_models() -> list[ModelEntry]:
    """The quality default behind the three large names; the fast 0.5B behind the flash tier; the
    packaged embedding models (EmbeddingGemma multilingual, MiniLM fast) and the bi-encoder rerank."""
    quality = [ModelEntry(name=n, packaged=DEFAULT_PACKAGED) for n in ("glm-4.6", "glm-4.5", "glm-4.5-air")]
    return [*quality, ModelEntry(name="glm-4.5-flash", packaged=QWEN_CODER_05B.name), *_embedding_models()]


def default_aliases() -> dict[str, str]:
    return {"gpt-5": "glm-4.6", "gpt-4-turbo": "glm-4.5-air", "gpt-4-vision": "glm-4.6v"}


class EngineSettings(Section):
    """llama.cpp knobs for each embedded model."""

    parallel: int = Field(4, ge=1, le=64, description="parallel decoding slots per model")
    ctx_per_slot: int = Field(4096, ge=256, description="context tokens per slot")
    threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    batch_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    max_waiting: int = Field(64, ge=0, description="requests that may wait for a slot before 429")


class EmbeddingSettings(Section):
    """llama.cpp knobs for each embedded embedding model, and the per-request limits."""

    parallel: int = Field(2, ge=1, le=64, description="inputs embedded at once per model")
    threads: int | None = Field(None, ge=1, description="default: engine.threads")
    max_inputs: int = Field(64, ge=1, description="inputs per request (Zhipu: 64)")
    max_waiting: int = Field(64, ge=0, description="requests that may wait for the model before 429")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GLMSERVE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = 8000
    liveness_port: int | None = Field(
        None, ge=0, le=65535, description="GET /livez from a thread on this port (0: any free port)"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    api_key: str | None = Field(None, description="one static key accepted besides the key store")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    log_level: str = "info"
    engine: EngineSettings = Field(default_factory=EngineSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    model_cache: Path | None = Field(None, description="converted packaged models (default: in the venv)")
    models: list[ModelEntry] = Field(default_factory=default_models)
    aliases: dict[str, str] = Field(default_factory=default_aliases)
    claude_tiers: dict[str, str] = Field(
        default_factory=lambda: {"haiku": "glm-4.5-flash", "claude": "glm-4.6"},
        description="a claude-* name that is not a model or alias: the model of the first of these "
        "words it contains (every such name contains 'claude'); {}: none",
    )
    master_key_file: Path | None = Field(None, description="default data_dir/master.key; replicas share one")
    redis_url: str | None = Field(None, description="share rate limits across replicas through Redis")
    limits: LimitSettings = Field(default_factory=LimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    access_log: bool = Field(True, description="one JSON line per HTTP request on stderr")
    metrics_require_key: bool = Field(False, description="GET /metrics needs an admin key")
    image_fetch: bool | None = Field(None, description="GLMSERVE_IMAGE_FETCH=1: short for images.fetch")

    @model_validator(mode="after")
    def _image_fetch_alias(self) -> Settings:
        if self.image_fetch is not None:
            self.images.fetch = self.image_fetch
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "glmserve.db"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build Settings once at start-up; ``flags`` are CLI values (``None`` means not given).

    Raises ``ConfigError`` naming the first bad or unknown key and where it came from.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    env = os.environ
    if (unknown := unknown_env(Settings, env)) is not None:
        raise unknown
    token = _config_file.set(config_file)
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise describe(exc, config_file, env) from None
    except (OSError, ValueError) as exc:  # an unreadable or malformed TOML file
        raise ConfigError(f"cannot read {config_file}: {exc}") from None
    finally:
        _config_file.reset(token)
