"""The per-request GraphQL context: services, the actor, DataLoaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from api.auth import Actor
from api.errors import DomainError, ErrorCode
from api.services import Services


@dataclass
class Context:
    request: Request | None
    services: Services
    actor: Actor | None
    auth_error: DomainError | None = None
    loaders: dict[str, Any] = field(default_factory=dict)
    response: Any = None

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.services.settings

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise self.auth_error or DomainError(
                ErrorCode.UNAUTHENTICATED, "请先登录 / please sign in"
            )
        return self.actor

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.services.db.transaction() as session:
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.services.db.session() as session:
            yield session

    def actor_address(self) -> str | None:
        """The client address (the proxy's, unless the server trusts forwarded headers)."""
        if self.request is None or self.request.client is None:
            return None
        return self.request.client.host

    def bearer_token(self) -> str | None:
        header = self.request.headers.get("authorization", "") if self.request is not None else ""
        return header[7:].strip() if header.lower().startswith("bearer ") else None

    def loader(self, name: str, factory: Any) -> Any:
        """A DataLoader built once per request."""
        if name not in self.loaders:
            self.loaders[name] = factory(self)
        return self.loaders[name]


Info = StrawberryInfo[Context, None]
