"""What the DingTalk, WeCom and Official Account clients share.

Access tokens live in Redis so every API process and worker uses the same one: the
platforms limit how often a token may be fetched (WeCom and WeChat count fetches per day)
and a new token may invalidate the previous one. One process refreshes at a time (a Redis
lock); the others wait for the new token. A token is refreshed `REFRESH_MARGIN` seconds
before it expires, so a call never goes out with a token that dies in flight.

Without Redis (the embedded default: one process) the same logic runs on an in-process
store.

Rate-limit answers are retried with exponential backoff (tenacity); an answer saying the
token is invalid drops the cached token and retries once with a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger("bedside.platforms")

REFRESH_MARGIN = 300  # seconds before expiry at which a token is refreshed
LOCK_SECONDS = 10  # how long one process may hold the refresh lock


class PlatformError(Exception):
    """The platform answered with an error code."""

    def __init__(
        self, platform: str, code: int | str, message: str, *, status: int | None = None
    ) -> None:
        super().__init__(f"{platform} error {code}: {message}")
        self.platform = platform
        self.code = code
        self.message = message
        self.status = status


class RateLimited(PlatformError):
    """Too many calls: retried with backoff, raised when retries run out."""


class PlatformBlocked(PlatformError):
    """The platform refuses until the hospital changes its configuration (an IP missing from
    the whitelist, a capability the account lacks) or a quota resets. Not retried in the
    call: the caller retries after `retry_after` seconds and tells the operator (`hint`)."""

    def __init__(
        self,
        platform: str,
        code: int | str,
        message: str,
        *,
        retry_after: float,
        hint: str,
        status: int | None = None,
    ) -> None:
        super().__init__(platform, code, message, status=status)
        self.retry_after = retry_after
        self.hint = hint


def seconds_to_midnight(tz: str = "Asia/Shanghai") -> float:
    """Until the next local midnight: when the platforms' daily quotas reset."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(tz))
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
    return (midnight - now).total_seconds()


class TokenInvalid(PlatformError):
    """The token was rejected: the cached one is dropped and the call retried once."""


class PlatformNotConfigured(RuntimeError):
    """The platform's credentials are not set (embedded mode logs instead of sending)."""


class TokenStore(Protocol):
    async def get(self, key: str) -> tuple[str, float] | None: ...
    async def put(self, key: str, token: str, expires_at: float) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def lock(self, key: str) -> bool: ...
    async def unlock(self, key: str) -> None: ...


class MemoryTokenStore:
    """One process only: the embedded default."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: set[str] = set()

    async def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)

    async def delete(self, key: str) -> None:
        self._tokens.pop(key, None)

    async def lock(self, key: str) -> bool:
        if key in self._locks:
            return False
        self._locks.add(key)
        return True

    async def unlock(self, key: str) -> None:
        self._locks.discard(key)


class RedisTokenStore:
    """Tokens shared by every process through Redis (`redis.asyncio.Redis`)."""

    def __init__(self, redis: Any, prefix: str = "bedside:platform-token:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> tuple[str, float] | None:
        raw = await self.redis.get(self.prefix + key)
        if raw is None:
            return None
        value = json.loads(raw)
        return value["token"], float(value["expires_at"])

    async def put(self, key: str, token: str, expires_at: float) -> None:
        ttl = max(1, int(expires_at - time.time()))
        await self.redis.set(
            self.prefix + key, json.dumps({"token": token, "expires_at": expires_at}), ex=ttl
        )

    async def delete(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def lock(self, key: str) -> bool:
        return bool(
            await self.redis.set(self.prefix + key + ":lock", "1", nx=True, ex=LOCK_SECONDS)
        )

    async def unlock(self, key: str) -> None:
        await self.redis.delete(self.prefix + key + ":lock")


class PlatformClient:
    """An async JSON client with a shared access token and rate-limit retries.

    Subclasses say how to fetch a token (`_fetch_token`) and how to read an answer
    (`_check`), which raises `RateLimited`, `TokenInvalid` or `PlatformError`.
    """

    platform = "platform"

    def __init__(
        self,
        *,
        api_base: str,
        store: TokenStore | None = None,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.store = store or MemoryTokenStore()
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self._own_http = http is None
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.token_fetches = 0  # how often this instance fetched a token (observability)

    # -- configuration -------------------------------------------------------------
    @property
    def configured(self) -> bool:
        raise NotImplementedError

    def require_configured(self) -> None:
        if not self.configured:
            raise PlatformNotConfigured(f"{self.platform} credentials are not configured")

    @property
    def token_key(self) -> str:
        raise NotImplementedError

    async def _fetch_token(self) -> tuple[str, int]:
        """Ask the platform for a token: (token, expires_in seconds)."""
        raise NotImplementedError

    def _check(self, response: httpx.Response, body: Any) -> Any:
        raise NotImplementedError

    # -- tokens --------------------------------------------------------------------
    async def access_token(self) -> str:
        """The shared token, refreshed by one process shortly before it expires."""
        self.require_configured()
        cached = await self.store.get(self.token_key)
        if cached and cached[1] - time.time() > REFRESH_MARGIN:
            return cached[0]
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            if await self.store.lock(self.token_key):
                try:
                    cached = await self.store.get(self.token_key)  # another process may have won
                    if cached and cached[1] - time.time() > REFRESH_MARGIN:
                        return cached[0]
                    token, expires_in = await self._with_retries(self._fetch_token)
                    self.token_fetches += 1
                    await self.store.put(self.token_key, token, time.time() + expires_in)
                    return token
                finally:
                    await self.store.unlock(self.token_key)
            await asyncio.sleep(0.05)
            cached = await self.store.get(self.token_key)
            if cached and cached[1] - time.time() > REFRESH_MARGIN:
                return cached[0]
            if time.monotonic() > deadline:
                raise PlatformError(
                    self.platform,
                    "TOKEN_LOCK",
                    "timed out waiting for another process to refresh the token",
                )

    async def invalidate_token(self) -> None:
        await self.store.delete(self.token_key)

    # -- calls ---------------------------------------------------------------------
    async def _with_retries(self, call: Callable[[], Awaitable[Any]]) -> Any:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RateLimited),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=8),
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        return self._check(response, body)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        base: str | None = None,
    ) -> Any:
        """Call an API that takes the access token; retry rate limits, renew a dead token once."""

        async def once() -> Any:
            token = await self.access_token()
            return await self._send(
                method, (base or self.api_base) + path, **self._authorize(token, params, json_body)
            )

        try:
            return await self._with_retries(once)
        except TokenInvalid:
            log.info("%s token rejected; fetching a new one", self.platform)
            await self.invalidate_token()
            return await self._with_retries(once)

    def _authorize(
        self, token: str, params: dict[str, Any] | None, json_body: Any
    ) -> dict[str, Any]:
        """Old-style APIs take the token as `?access_token=`."""
        kwargs: dict[str, Any] = {"params": {**(params or {}), "access_token": token}}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body, ensure_ascii=False).encode()
            kwargs["headers"] = {"content-type": "application/json; charset=utf-8"}
        return kwargs

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()


def wechat_style_check(
    platform: str,
    response: httpx.Response,
    body: Any,
    *,
    rate_codes: set[int],
    token_codes: set[int],
    blocked_codes: dict[int, tuple[Callable[[], float], str]] | None = None,
) -> Any:
    """WeCom, the Official Account and DingTalk's old API answer `{errcode, errmsg}`.

    `blocked_codes`: errcode -> (seconds until trying again, what the operator must do)."""
    if response.status_code == 429:
        raise RateLimited(platform, 429, "too many requests", status=429)
    if not isinstance(body, dict):
        raise PlatformError(
            platform,
            response.status_code,
            f"unexpected answer ({response.status_code})",
            status=response.status_code,
        )
    code = int(body.get("errcode", 0) or 0)
    if code == 0:
        return body
    message = str(body.get("errmsg", ""))
    if blocked_codes and code in blocked_codes:
        after, hint = blocked_codes[code]
        raise PlatformBlocked(
            platform, code, message, retry_after=after(), hint=hint, status=response.status_code
        )
    if code in rate_codes:
        raise RateLimited(platform, code, message, status=response.status_code)
    if code in token_codes:
        raise TokenInvalid(platform, code, message, status=response.status_code)
    raise PlatformError(platform, code, message, status=response.status_code)
