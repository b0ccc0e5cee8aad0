"""Clients for the DingTalk, WeCom and Official Account APIs, with shared access tokens.

    platforms = get_platforms(services)   # one set per process, kept in services.extras
    await platforms.dingtalk.send_text_notice(["chief.wang"], "…")
    await platforms.wecom.send_template_card(["ma.zhao"], card)
    await platforms.wechat_oa.send_template_message(openid, template_id, data)

Tokens are kept in Redis when BEDSIDE_REDIS_URL is set (every process shares them),
otherwise in process. `client.configured` is False when the platform's credentials are
not set: the caller logs instead of sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.platforms.base import (
    MemoryTokenStore,
    PlatformBlocked,
    PlatformClient,
    PlatformError,
    PlatformNotConfigured,
    RateLimited,
    RedisTokenStore,
    TokenInvalid,
    TokenStore,
)
from integrations.platforms.dingtalk import DingTalkClient
from integrations.platforms.wechat_oa import OfficialAccountClient
from integrations.platforms.wecom import WeComClient

__all__ = [
    "DingTalkClient",
    "MemoryTokenStore",
    "OfficialAccountClient",
    "PlatformClient",
    "PlatformBlocked",
    "PlatformError",
    "PlatformNotConfigured",
    "Platforms",
    "RateLimited",
    "RedisTokenStore",
    "TokenInvalid",
    "TokenStore",
    "WeComClient",
    "build_platforms",
    "get_platforms",
]


@dataclass
class Platforms:
    dingtalk: DingTalkClient
    wecom: WeComClient
    wechat_oa: OfficialAccountClient
    redis: Any = None

    async def aclose(self) -> None:
        for client in (self.dingtalk, self.wecom, self.wechat_oa):
            await client.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def build_platforms(
    settings: Any, *, store: TokenStore | None = None, **client_options: Any
) -> Platforms:
    """Clients for one process. `client_options` (max_attempts, backoff_seconds, http) go to each."""
    redis = None
    if store is None:
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            store = RedisTokenStore(redis)
        else:
            store = MemoryTokenStore()
    dingtalk = DingTalkClient(
        app_key=settings.dingtalk_app_key,
        app_secret=settings.dingtalk_app_secret,
        agent_id=settings.dingtalk_agent_id,
        api_base=settings.dingtalk_api_base,
        api_v1_base=settings.dingtalk_v1_base,
        robot_code=settings.dingtalk_robot_code,
        card_template_id=settings.dingtalk_card_template_id,
        callback_token=settings.dingtalk_callback_token,
        callback_aes_key=settings.dingtalk_callback_aes_key,
        card_use_stream=settings.dingtalk_use_stream,
        card_callback_route_key=settings.dingtalk_card_callback_route_key,
        card_callback_secret=settings.dingtalk_card_callback_secret,
        store=store,
        **client_options,
    )
    wecom = WeComClient(
        corp_id=settings.wecom_corp_id,
        secret=settings.wecom_secret,
        agent_id=settings.wecom_agent_id,
        api_base=settings.wecom_api_base,
        token=settings.wecom_token,
        aes_key=settings.wecom_aes_key,
        store=store,
        **client_options,
    )
    wechat_oa = OfficialAccountClient(
        app_id=settings.wechat_oa_app_id,
        secret=settings.wechat_oa_secret,
        api_base=settings.wechat_oa_api_base,
        oauth_base=settings.wechat_oa_oauth_base,
        token=settings.wechat_oa_token,
        aes_key=settings.wechat_oa_aes_key,
        store=store,
        **client_options,
    )
    return Platforms(dingtalk=dingtalk, wecom=wecom, wechat_oa=wechat_oa, redis=redis)


def get_platforms(services: Any) -> Platforms:
    """The process's clients, built on first use and kept in `services.extras["platforms"]`."""
    platforms = services.extras.get("platforms")
    if platforms is None:
        platforms = build_platforms(services.settings)
        services.extras["platforms"] = platforms
    return platforms
