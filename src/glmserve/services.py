"""Everything a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from glmserve.accounting.auth import Authenticator, Principal
from glmserve.accounting.key_admin import KeyAdmin
from glmserve.accounting.metering import Metering
from glmserve.caching.cache import ResponseCache
from glmserve.config.settings import Settings
from glmserve.metrics import Metrics
from glmserve.serving.chat_service import ChatService
from glmserve.serving.model_router import ModelRouter
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
    metrics: Metrics
    metering: Metering
    admin: KeyAdmin
    cache: ResponseCache


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: Request) -> Principal:
    principal = await services(request).auth.authenticate(request.headers.get("authorization"))
    request.state.key_id = principal.key_id  # for the access log; an id, not a secret
    return principal
