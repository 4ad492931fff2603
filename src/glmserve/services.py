"""Everything a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from glmserve.auth import Authenticator, Principal
from glmserve.completions import ChatService
from glmserve.routing import ModelRouter
from glmserve.settings import Settings
from glmserve.store.db import Store
from glmserve.store.keys import KeyStore


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    keys: KeyStore
    auth: Authenticator
    router: ModelRouter
    chat: ChatService


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: Request) -> Principal:
    return await services(request).auth.authenticate(request.headers.get("authorization"))
