"""WeCom (企业微信): application messages, template cards, card updates, directory.

wechatpy's `wechatpy.enterprise.WeChatClient` is blocking (requests) and stores tokens per
process; the calls here go through httpx with the shared token of `PlatformClient`, and
wechatpy supplies the callback crypto (`callback_crypto`: WXBizMsgCrypt).

Limits (WeCom docs): `touser` holds at most 1000 ids joined by "|"; a template card's
`response_code` may be used once, within 72 hours, to update that user's card.
"""

from __future__ import annotations

from typing import Any

import httpx
from wechatpy.enterprise.crypto import WeChatCrypto

from integrations.platforms.base import (
    PlatformClient,
    PlatformError,
    RateLimited,
    wechat_style_check,
)

RATE_LIMIT_CODES = {45009, 45033, 45011, -1}
TOKEN_CODES = {40014, 42001, 41001}
# 全局错误码 (https://developer.work.weixin.qq.com/document/path/90313): 60020 "不安全的访问IP"
# — the server's address is not among the app's trusted IPs (企业可信IP).
BLOCKED_CODES = {
    60020: (
        lambda: 600.0,
        "把服务器出口 IP 加入企业微信应用的 企业可信IP / add the server's egress IP to the "
        "WeCom app's trusted IPs",
    ),
}


class WeComClient(PlatformClient):
    platform = "wecom"

    def __init__(
        self,
        *,
        corp_id: str | None,
        secret: str | None,
        agent_id: str | None,
        api_base: str = "https://qyapi.weixin.qq.com",
        token: str | None = None,
        aes_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_base=api_base, **kwargs)
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.callback_token = token
        self.callback_aes_key = aes_key

    @property
    def configured(self) -> bool:
        return bool(self.corp_id and self.secret)

    @property
    def token_key(self) -> str:
        return f"wecom:{self.corp_id}:{self.agent_id}"

    def callback_crypto(self) -> WeChatCrypto:
        if not (self.callback_token and self.callback_aes_key and self.corp_id):
            raise PlatformError(
                self.platform, "NOT_CONFIGURED", "callback token / AES key / CorpID not set"
            )
        return WeChatCrypto(self.callback_token, self.callback_aes_key, self.corp_id)

    async def _fetch_token(self) -> tuple[str, int]:
        body = await self._send(
            "GET",
            self.api_base + "/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
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
    async def send_message(
        self, userids: list[str], msgtype: str, content: dict[str, Any], **options: Any
    ) -> dict[str, Any]:
        """POST message/send; returns the answer (msgid, response_code for cards, invaliduser)."""
        if not userids or len(userids) > 1000:
            raise ValueError("a WeCom message goes to 1..1000 users")
        body = {
            "touser": "|".join(userids),
            "msgtype": msgtype,
            "agentid": int(self.agent_id or 0),
            msgtype: content,
            **options,
        }
        return await self.call("POST", "/cgi-bin/message/send", json_body=body)

    async def send_text(self, userids: list[str], content: str) -> dict[str, Any]:
        return await self.send_message(userids, "text", {"content": content})

    async def send_markdown(self, userids: list[str], content: str) -> dict[str, Any]:
        return await self.send_message(userids, "markdown", {"content": content})

    async def send_template_card(self, userids: list[str], card: dict[str, Any]) -> dict[str, Any]:
        """A template card (e.g. card_type=button_interaction); the answer carries response_code."""
        return await self.send_message(
            userids, "template_card", card, enable_id_trans=0, enable_duplicate_check=0
        )

    async def update_template_card(
        self,
        *,
        userids: list[str],
        response_code: str,
        replace_name: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Replace the buttons with a label (`replace_name`) or the whole card."""
        body: dict[str, Any] = {
            "userids": userids,
            "agentid": int(self.agent_id or 0),
            "response_code": response_code,
        }
        if card is not None:
            body["template_card"] = card
        else:
            body["button"] = {"replace_name": replace_name or "已处理"}
        return await self.call("POST", "/cgi-bin/message/update_template_card", json_body=body)

    # -- people --------------------------------------------------------------------
    async def userid_for_auth_code(self, code: str) -> str:
        """In-app web login: the `code` WeCom appends to the OAuth redirect."""
        body = await self.call("GET", "/cgi-bin/auth/getuserinfo", params={"code": code})
        if not body.get("userid"):
            raise PlatformError(self.platform, "NOT_MEMBER", "the code does not belong to a member")
        return str(body["userid"])

    async def userid_by_mobile(self, mobile: str) -> str | None:
        try:
            body = await self.call("POST", "/cgi-bin/user/getuserid", json_body={"mobile": mobile})
        except PlatformError as exc:
            if isinstance(exc, RateLimited):
                raise
            return None
        return body.get("userid")

    # -- directory (通讯录) ----------------------------------------------------------
    async def directory(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(departments, members): `department/list` (every department the app may see,
        developer.work.weixin.qq.com/document/path/90208) and `user/list` per department
        (path/90201). WeCom has no staff number field: an extended attribute (extattr)
        named 工号 carries it. `status` 5 is 退出企业 (left) and 2 禁用 (disabled).
        Apps created after 2022-06-20 get no mobile here (sensitive field), so matching
        falls back to the staff number."""
        body = await self.call("GET", "/cgi-bin/department/list")
        departments = [
            {"id": d["id"], "name": d["name"], "parent_id": d.get("parentid")}
            for d in body.get("department") or []
        ]
        members: dict[str, dict[str, Any]] = {}
        for dept in departments:
            body = await self.call(
                "GET", "/cgi-bin/user/list", params={"department_id": dept["id"]}
            )
            for user in body.get("userlist") or []:
                attrs = (user.get("extattr") or {}).get("attrs") or []
                job = next(
                    (
                        (a.get("text") or {}).get("value") or a.get("value")
                        for a in attrs
                        if a.get("name") == "工号"
                    ),
                    None,
                )
                member = members.setdefault(
                    user["userid"],
                    {
                        "userid": user["userid"],
                        "name": user.get("name", ""),
                        "mobile": (user.get("mobile") or "").removeprefix("+86") or None,
                        "job_number": job or None,
                        "left": user.get("status") in (2, 5),
                        "departments": [],
                    },
                )
                member["departments"].append(dept["id"])
        return departments, list(members.values())
