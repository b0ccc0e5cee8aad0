"""Inbound conversations: DingTalk and WeCom task cards, the Official Account, binding.

`routes()` returns the Starlette routes that `api/app.py` mounts:

    /bots/dingtalk/callback   GET,POST  event subscription (signed, encrypted)
    /bots/dingtalk/card-callback POST   card taps in HTTP mode (x-ddpaas-signature)
    /bots/dingtalk/login      POST      免登: DingTalk in-app auth code → Bedside token
    /bots/wecom/callback      GET,POST  URL verification, template_card_event
    /bots/wecom/login         POST      WeCom OAuth code → Bedside token
    /bots/wechat-oa/callback  GET,POST  Official Account messages and menu events
    /bots/wechat-oa/oauth     GET       web OAuth (snsapi_base) → the PWA's patient pages
    /bots/wechat-oa/oauth/callback GET  WeChat's return with the code → token or binding
    /bots/wechat-oa/bind      POST      bind the openid to the patient archive
    /bots/bind                POST      redeem a one-time binding link (signed in)
    /bots/signin-config       GET       what the PWA needs for sign-in inside DingTalk / WeCom
    /bots/wecom/oauth         GET       WeCom web OAuth (snsapi_base) → the page, signed in
    /bots/wecom/oauth/callback GET      WeCom's return with the code
"""

from __future__ import annotations

from typing import Any


def not_configured_is_not_found(endpoint: Any) -> Any:
    """A platform the hospital has not set up (no credentials) has no endpoint: 404 with a
    code, instead of the client's NOT_CONFIGURED error escaping as HTTP 500."""
    import functools

    from starlette.responses import JSONResponse

    from integrations.platforms.base import PlatformError, PlatformNotConfigured

    @functools.wraps(endpoint)
    async def guarded(request: Any) -> Any:
        try:
            return await endpoint(request)
        except (PlatformNotConfigured, PlatformError) as exc:
            if isinstance(exc, PlatformError) and str(exc.code) != "NOT_CONFIGURED":
                raise
            return JSONResponse(
                {
                    "error": {
                        "code": "NOT_CONFIGURED",
                        "message": "未启用该平台 / this platform is not set up",
                    }
                },
                status_code=404,
            )

    return guarded


def routes() -> list[Any]:
    from starlette.routing import Route

    from bots import binding, dingtalk, signin, wechat_oa, wecom

    guard = not_configured_is_not_found
    return [
        Route("/bots/dingtalk/callback", guard(dingtalk.callback), methods=["GET", "POST"]),
        Route("/bots/dingtalk/card-callback", guard(dingtalk.card_callback), methods=["POST"]),
        Route("/bots/dingtalk/login", guard(dingtalk.login), methods=["POST"]),
        Route("/bots/wecom/callback", guard(wecom.callback), methods=["GET", "POST"]),
        Route("/bots/wecom/login", guard(binding.wecom_login), methods=["POST"]),
        Route("/bots/wechat-oa/callback", guard(wechat_oa.callback), methods=["GET", "POST"]),
        Route("/bots/wechat-oa/oauth", wechat_oa.oauth_start, methods=["GET"]),
        Route("/bots/wechat-oa/oauth/callback", wechat_oa.oauth_callback, methods=["GET"]),
        Route("/bots/wechat-oa/bind", wechat_oa.bind, methods=["POST"]),
        Route("/bots/bind", binding.redeem, methods=["POST"]),
        Route("/bots/signin-config", signin.config, methods=["GET"]),
        Route("/bots/wecom/oauth", signin.wecom_oauth, methods=["GET"]),
        Route("/bots/wecom/oauth/callback", signin.wecom_oauth_callback, methods=["GET"]),
    ]


# How a tap travels: the callback verifies (signature, fresh timestamp, unseen nonce) and
# decrypts, stores the tap in the inbox (`inbox.py`, one INSERT, deduplicated by the
# platform's callback id) and answers; a detached task then decides it through
# `api.domain.approvals` (`cards.decide_tap`) and writes the card changes (`BotCard`), which
# are sent after that commit (`cards.flush`). `sweep.sweep` (worker or `bedside bots
# sweep`) catches up on anything a stopped process left.
