"""The ``glmserve`` command line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from glmserve.settings import Settings, load_settings
from glmserve.store.db import open_store
from glmserve.store.keys import KeyStore, load_or_create_master_key

app = typer.Typer(
    help="Self-hosted server for the OpenAI-compatible Zhipu BigModel API.", no_args_is_help=True
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", exists=True)]
T = TypeVar("T")


def _with_keys(settings: Settings, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await open_store(settings.resolved_database_url)
        try:
            return await action(KeyStore(store, load_or_create_master_key(settings.data_dir)))
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
    import uvicorn

    from glmserve.app import create_app

    settings = load_settings(config, host=host, port=port, data_dir=data_dir)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None, config: ConfigOpt = None
) -> None:
    """Create a key; prints exactly one line, the key `id.secret` (shown only this once)."""
    _, key = _with_keys(load_settings(config), lambda ks: ks.create(name))
    typer.echo(key)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys (ids and names; secrets are never shown again)."""
    records = _with_keys(load_settings(config), lambda ks: ks.list())
    typer.echo(f"{'ID':32}  {'NAME':16}  {'CREATED':20}  REVOKED")
    for r in records:
        typer.echo(f"{r.id:32}  {(r.name or '-'):16}  {_when(r.created_at):20}  {_when(r.revoked_at)}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key by its id (the part before the dot)."""
    if not _with_keys(load_settings(config), lambda ks: ks.revoke(key_id)):
        typer.echo(f"no active key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def models(config: ConfigOpt = None) -> None:
    """Print the model table: public names, aliases and what serves them."""
    settings = load_settings(config)
    typer.echo(f"{'MODEL':20}  SERVED BY")
    for entry in settings.models:
        typer.echo(
            f"{entry.name:20}  embedded llama.cpp: {entry.gguf or 'packaged Qwen2.5-Coder-0.5B-Instruct'}"
        )
    names = {e.name for e in settings.models}
    for alias, target in settings.aliases.items():
        status = "" if target in names else " (not configured)"
        typer.echo(f"{alias:20}  alias of {target}{status}")


def main() -> None:
    app()
