"""WeChat Official Account (公众号): template messages, customer-service text, menu, web OAuth.

Calls go through httpx with the shared token of `PlatformClient`; wechatpy supplies the
callback crypto (`callback_crypto`, safe mode) and signature check.

Limits (WeChat docs): template messages only to users who follow the account; a web OAuth
`code` is valid for 5 minutes and for one exchange; snsapi_base gives the openid silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from wechatpy.crypto import WeChatCrypto

from integrations.platforms.base import (
    PlatformClient,
    PlatformError,
    seconds_to_midnight,
    wechat_style_check,
)

RATE_LIMIT_CODES = {45011, -1}
TOKEN_CODES = {40001, 40014, 42001}
# Answers that no retry within minutes can change (全局返回码,
# https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html):
BLOCKED_CODES = {
    # /cgi-bin/token from an address not in the account's IP whitelist (IP白名单)
    40164: (
        lambda: 600.0,
        "把服务器出口 IP 加入公众号后台 设置与开发 › 基本配置 › IP白名单 / add the server's "
        "egress IP to the Official Account's IP whitelist",
    ),
    # the daily call quota of this API is used up (resets at midnight)
    45009: (
        seconds_to_midnight,
        "公众号接口今日调用次数已用完，次日恢复 / the account's daily API quota is used up; "
        "it resets at midnight",
    ),
    # the API is not open to this account (template messages need a verified service account)
    48001: (
        lambda: 3600.0,
        "该接口需认证服务号 / this API needs a verified service account (认证服务号)",
    ),
}


class OfficialAccountClient(PlatformClient):
    platform = "wechat_oa"

    def __init__(
        self,
        *,
        app_id: str | None,
        secret: str | None,
        api_base: str = "https://api.weixin.qq.com",
        oauth_base: str = "https://open.weixin.qq.com",
        token: str | None = None,
        aes_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_base=api_base, **kwargs)
        self.app_id = app_id
        self.secret = secret
        self.oauth_base = oauth_base.rstrip("/")
        self.callback_token = token
        self.callback_aes_key = aes_key

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.secret)

    @property
    def token_key(self) -> str:
        return f"wechat_oa:{self.app_id}"

    def callback_crypto(self) -> WeChatCrypto | None:
        """Safe-mode crypto, or None when the account runs in plain-text mode."""
        if not (self.callback_aes_key and self.callback_token and self.app_id):
            return None
        return WeChatCrypto(self.callback_token, self.callback_aes_key, self.app_id)

    async def _fetch_token(self) -> tuple[str, int]:
        body = await self._send(
            "GET",
            self.api_base + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret},
        )
        return body["access_token"], int(body.get("expires_in", 7200))

    def _check(self, response: httpx.Response, body: Any) -> Any:
        return wechat_style_check(
            self.platform,
            response,
            body,
            rate_codes=RATE_LIMIT_CODES,
            token_codes=TOKEN_CODES,
            blocked_codes=BLOCKED_CODES,
        )

    # -- messages ------------------------------------------------------------------
    async def send_template_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        *,
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> str:
        """Send a template message; `data` maps the template's keys to values. Returns msgid."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: {"value": v} for k, v in data.items()},
        }
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id  # WeChat drops a repeat with the same id
        answer = await self.call("POST", "/cgi-bin/message/template/send", json_body=body)
        return str(answer.get("msgid", ""))

    async def send_text(self, openid: str, content: str) -> None:
        """Customer-service text (within 48 hours of the user's last message)."""
        await self.call(
            "POST",
            "/cgi-bin/message/custom/send",
            json_body={"touser": openid, "msgtype": "text", "text": {"content": content}},
        )

    async def create_menu(self, buttons: list[dict[str, Any]]) -> None:
        await self.call("POST", "/cgi-bin/menu/create", json_body={"button": buttons})

    # -- web OAuth (网页授权) ---------------------------------------------------------
    def authorize_url(self, redirect_uri: str, state: str = "", scope: str = "snsapi_base") -> str:
        query = urlencode(
            {
                "appid": self.app_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": scope,
                "state": state,
            }
        )
        return f"{self.oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"

    async def openid_for_code(self, code: str) -> str:
        """Exchange the OAuth `code` for the user's openid (no app token needed)."""
        self.require_configured()

        async def once() -> Any:
            return await self._send(
                "GET",
                self.api_base + "/sns/oauth2/access_token",
                params={
                    "appid": self.app_id,
                    "secret": self.secret,
                    "code": code,
                    "grant_type": "authorization_code",
                },
            )

        body = await self._with_retries(once)
        if not body.get("openid"):
            raise PlatformError(self.platform, "NO_OPENID", "no openid in the OAuth answer")
        return str(body["openid"])
