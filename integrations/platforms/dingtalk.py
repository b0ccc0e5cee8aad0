"""DingTalk: work notices, interactive cards, in-app login, directory look-ups.

dingtalk-sdk 1.3 is a blocking client (requests) with per-process token storage, so the
calls here go through httpx with the shared token of `PlatformClient`; the SDK supplies
the event-callback crypto (`DingTalkCrypto`, see `callback_crypto`). Interactive cards
(互动卡片) are the v1.0 API on api.dingtalk.com, which takes the same token in the
`x-acs-dingtalk-access-token` header and answers with HTTP status codes instead of errcode.

Limits worth knowing (DingTalk docs): a work notice goes to at most 100 users per call,
and the same content to the same user only once a day; card `cardParamMap` values are
strings.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from dingtalk.crypto import DingTalkCrypto

from integrations.platforms.base import (
    PlatformClient,
    PlatformError,
    RateLimited,
    TokenInvalid,
    wechat_style_check,
)

# errcodes of the old (oapi) API
RATE_LIMIT_CODES = {90002, 90005, 90006, 90018, -1}
TOKEN_CODES = {40014, 42001}
# error codes of the v1.0 API (HTTP 4xx with {"code": ..., "message": ...})
V1_RATE_LIMIT_CODES = {
    "Forbidden.AccessDenied.QpsLimitForApi",
    "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    "Throttling",
}
V1_TOKEN_CODES = {"InvalidAuthentication"}

WORK_NOTICE_MAX_USERS = 100


class DingTalkClient(PlatformClient):
    platform = "dingtalk"

    def __init__(
        self,
        *,
        app_key: str | None,
        app_secret: str | None,
        agent_id: str | None,
        api_base: str = "https://oapi.dingtalk.com",
        api_v1_base: str = "https://api.dingtalk.com",
        robot_code: str | None = None,
        card_template_id: str | None = None,
        callback_token: str | None = None,
        callback_aes_key: str | None = None,
        card_use_stream: bool = True,
        card_callback_route_key: str | None = None,
        card_callback_secret: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_base=api_base, **kwargs)
        self.app_key = app_key
        self.app_secret = app_secret
        self.agent_id = agent_id
        self.api_v1_base = api_v1_base.rstrip("/")
        self.robot_code = robot_code or app_key
        self.card_template_id = card_template_id
        self.callback_token = callback_token
        self.callback_aes_key = callback_aes_key
        self.card_use_stream = card_use_stream
        self.card_callback_route_key = card_callback_route_key
        self.card_callback_secret = card_callback_secret

    @property
    def configured(self) -> bool:
        return bool(self.app_key and self.app_secret)

    def card_setup_problems(self) -> list[str]:
        """What is missing before approval cards can be sent (empty: ready).

        Without a template id DingTalk refuses every createAndDeliver, and in HTTP mode a
        card without a registered route key and its apiSecret calls back nowhere (or
        unverifiably), so card delivery does not start until these are set.
        """
        if not self.configured:
            return ["BEDSIDE_DINGTALK_APP_KEY / BEDSIDE_DINGTALK_APP_SECRET"]
        problems = []
        if not self.card_template_id:
            problems.append("BEDSIDE_DINGTALK_CARD_TEMPLATE_ID (docs/dingtalk-card.md)")
        if not self.robot_code:
            problems.append("BEDSIDE_DINGTALK_ROBOT_CODE")
        if not self.card_use_stream:
            if not self.card_callback_route_key:
                problems.append("BEDSIDE_DINGTALK_CARD_CALLBACK_ROUTE_KEY")
            if not self.card_callback_secret:
                problems.append("BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET")
        return problems

    @property
    def cards_configured(self) -> bool:
        return not self.card_setup_problems()

    @property
    def token_key(self) -> str:
        return f"dingtalk:{self.app_key}"

    def callback_crypto(self) -> DingTalkCrypto:
        """The SDK's event-callback crypto; an internal app's owner key is its AppKey."""
        if not (self.callback_token and self.callback_aes_key and self.app_key):
            raise PlatformError(
                self.platform, "NOT_CONFIGURED", "callback token / AES key / AppKey not set"
            )
        return DingTalkCrypto(self.callback_token, self.callback_aes_key, self.app_key)

    async def _fetch_token(self) -> tuple[str, int]:
        body = await self._send(
            "GET",
            self.api_base + "/gettoken",
            params={"appkey": self.app_key, "appsecret": self.app_secret},
        )
        return body["access_token"], int(body.get("expires_in", 7200))

    def _check(self, response: httpx.Response, body: Any) -> Any:
        return wechat_style_check(
            self.platform, response, body, rate_codes=RATE_LIMIT_CODES, token_codes=TOKEN_CODES
        )

    # -- v1.0 API ------------------------------------------------------------------
    async def call_v1(self, method: str, path: str, json_body: dict[str, Any]) -> Any:
        async def once() -> Any:
            token = await self.access_token()
            response = await self.http.request(
                method,
                self.api_v1_base + path,
                content=json.dumps(json_body, ensure_ascii=False).encode(),
                headers={
                    "x-acs-dingtalk-access-token": token,
                    "content-type": "application/json; charset=utf-8",
                },
            )
            return self._check_v1(response)

        try:
            return await self._with_retries(once)
        except TokenInvalid:
            await self.invalidate_token()
            return await self._with_retries(once)

    def _check_v1(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code < 300:
            return body
        code = (
            str(body.get("code", response.status_code))
            if isinstance(body, dict)
            else str(response.status_code)
        )
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if response.status_code == 429 or code in V1_RATE_LIMIT_CODES:
            raise RateLimited(self.platform, code, message, status=response.status_code)
        if response.status_code == 401 or code in V1_TOKEN_CODES:
            raise TokenInvalid(self.platform, code, message, status=response.status_code)
        raise PlatformError(self.platform, code, message, status=response.status_code)

    # -- work notices (工作通知) ------------------------------------------------------
    async def send_work_notice(self, userids: list[str], msg: dict[str, Any]) -> str:
        """Send a work notice; returns DingTalk's task_id. At most 100 users per call."""
        if not userids or len(userids) > WORK_NOTICE_MAX_USERS:
            raise ValueError(f"a work notice goes to 1..{WORK_NOTICE_MAX_USERS} users")
        body = await self.call(
            "POST",
            "/topapi/message/corpconversation/asyncsend_v2",
            json_body={
                "agent_id": int(self.agent_id or 0),
                "userid_list": ",".join(userids),
                "msg": msg,
            },
        )
        return str(body.get("task_id", ""))

    async def send_result(self, task_id: str) -> dict[str, Any]:
        """获取工作通知消息的发送结果 (POST /topapi/message/corpconversation/getsendresult,
        https://open.dingtalk.com/document/orgapp/gets-the-result-of-sending-messages-asynchronously-to-the-enterprise):
        `send_result` with invalid_user_id_list, forbidden_user_id_list (flow control: the
        same content twice a day, over 500 a day), failed_user_id_list, read/unread lists."""
        body = await self.call(
            "POST",
            "/topapi/message/corpconversation/getsendresult",
            json_body={"agent_id": int(self.agent_id or 0), "task_id": int(task_id)},
        )
        return dict(body.get("send_result") or {})

    async def send_text_notice(self, userids: list[str], content: str) -> str:
        return await self.send_work_notice(
            userids, {"msgtype": "text", "text": {"content": content}}
        )

    async def send_markdown_notice(self, userids: list[str], title: str, text: str) -> str:
        return await self.send_work_notice(
            userids, {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        )

    async def send_action_card_notice(
        self, userids: list[str], title: str, markdown: str, single_title: str, single_url: str
    ) -> str:
        msg = {
            "msgtype": "action_card",
            "action_card": {
                "title": title,
                "markdown": markdown,
                "single_title": single_title,
                "single_url": single_url,
            },
        }
        return await self.send_work_notice(userids, msg)

    # -- interactive cards (互动卡片, v1.0) -------------------------------------------
    # https://open.dingtalk.com/document/orgapp/create-and-deliver-cards (创建并投放卡片);
    # the answer's result.deliverResults[] has one {spaceType, spaceId, success, errorMsg}
    # per space (the Alibaba Cloud SDK's CreateAndDeliverResponseBodyResultDeliverResults).
    def _deliver_model(self, userid: str) -> dict[str, Any]:
        return {
            "openSpaceId": f"dtv1.card//IM_ROBOT.{userid}",
            "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.robot_code},
            "userIdType": 1,
        }

    async def create_and_deliver_card(
        self,
        *,
        out_track_id: str,
        userid: str,
        card_data: dict[str, str],
        private_data: dict[str, dict[str, str]] | None = None,
        callback_type: str | None = None,
        callback_route_key: str | None = None,
        template_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a card and deliver it to one user's chat with the app's robot.

        Raises `PlatformError` (code NOT_DELIVERED) when DingTalk accepted the call but the
        card reached no one (a user outside the robot's visible range, for one)."""
        callback_type = callback_type or ("STREAM" if self.card_use_stream else "HTTP")
        body: dict[str, Any] = {
            "cardTemplateId": template_id or self.card_template_id,
            "outTrackId": out_track_id,
            "callbackType": callback_type,
            "cardData": {"cardParamMap": _strings(card_data)},
            "imRobotOpenSpaceModel": {"supportForward": False},
            **self._deliver_model(userid),
        }
        route_key = callback_route_key or self.card_callback_route_key
        if callback_type == "HTTP" and route_key:
            body["callbackRouteKey"] = route_key
        if private_data:
            body["privateData"] = {
                uid: {"cardParamMap": _strings(data)} for uid, data in private_data.items()
            }
        answer = await self.call_v1("POST", "/v1.0/card/instances/createAndDeliver", body)
        self._check_delivered(answer, userid)
        return answer

    async def deliver_card(self, *, out_track_id: str, userid: str) -> dict[str, Any]:
        """Deliver an existing card again (投放卡片, POST /v1.0/card/instances/deliver)."""
        answer = await self.call_v1(
            "POST",
            "/v1.0/card/instances/deliver",
            {"outTrackId": out_track_id, **self._deliver_model(userid)},
        )
        self._check_delivered(answer, userid)
        return answer

    def _check_delivered(self, answer: Any, userid: str) -> None:
        """A send is delivered only if DingTalk says so for this user's space."""
        result = (answer or {}).get("result") if isinstance(answer, dict) else None
        results = (result or {}).get("deliverResults") if isinstance(result, dict) else None
        if not isinstance(results, list) or not results:
            raise PlatformError(self.platform, "NOT_DELIVERED", "no delivery result in the answer")
        mine = [r for r in results if str(r.get("spaceId", userid)) == userid] or results
        if not any(r.get("success") is True for r in mine):
            reason = "; ".join(str(r.get("errorMsg") or "") for r in mine if r.get("errorMsg"))
            raise PlatformError(
                self.platform, "NOT_DELIVERED", reason or f"the card reached no one ({userid})"
            )

    async def update_card(
        self,
        *,
        out_track_id: str,
        card_data: dict[str, str],
        private_data: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Change a delivered card's data (by key): every holder sees the new state."""
        body: dict[str, Any] = {
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": _strings(card_data)},
            "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
            "userIdType": 1,
        }
        if private_data:
            body["privateData"] = {
                uid: {"cardParamMap": _strings(data)} for uid, data in private_data.items()
            }
        return await self.call_v1("PUT", "/v1.0/card/instances", body)

    async def register_card_callback(
        self, *, route_key: str, callback_url: str, api_secret: str, force_update: bool
    ) -> dict[str, Any]:
        """注册卡片回调地址 (POST /v1.0/card/callbacks/register): bind `route_key` to
        `callback_url`; DingTalk signs each callback with `api_secret`. Without
        `force_update` an existing registration is kept and returned (DingTalk's
        two-step confirmation), so the caller can compare before overwriting.
        https://open.dingtalk.com/document/orgapp/register-card-callback-address"""
        answer = await self.call_v1(
            "POST",
            "/v1.0/card/callbacks/register",
            {
                "apiSecret": api_secret,
                "callbackRouteKey": route_key,
                "callbackUrl": callback_url,
                "forceUpdate": force_update,
            },
        )
        return (answer or {}).get("result") or {}

    # -- people --------------------------------------------------------------------
    async def userid_for_auth_code(self, code: str) -> str:
        """In-app login (免登): the code from `dd.runtime.permission.requestAuthCode`."""
        body = await self.call("POST", "/topapi/v2/user/getuserinfo", json_body={"code": code})
        return str(body["result"]["userid"])

    async def userid_by_mobile(self, mobile: str) -> str | None:
        try:
            body = await self.call(
                "POST", "/topapi/v2/user/getbymobile", json_body={"mobile": mobile}
            )
        except PlatformError as exc:
            if isinstance(exc, RateLimited):
                raise
            return None
        return (body.get("result") or {}).get("userid")

    # -- directory (通讯录) ----------------------------------------------------------
    async def directory(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(departments, members) of the whole organisation the app may see.

        Departments come from `topapi/v2/department/listsub` walked from the root (1);
        members from `topapi/v2/user/list` per department, 100 a page by cursor
        (open.dingtalk.com/document/orgapp/queries-the-complete-information-of-a-department-user).
        A member is returned once, with every department they are in. Someone who left
        is no longer in the directory at all."""
        departments: list[dict[str, Any]] = []
        queue = [1]
        while queue:
            parent = queue.pop(0)
            body = await self.call(
                "POST", "/topapi/v2/department/listsub", json_body={"dept_id": parent}
            )
            for dept in body.get("result") or []:
                departments.append(
                    {
                        "id": dept["dept_id"],
                        "name": dept["name"],
                        "parent_id": dept.get("parent_id"),
                    }
                )
                queue.append(dept["dept_id"])
        members: dict[str, dict[str, Any]] = {}
        for dept_id in [1, *(d["id"] for d in departments)]:
            cursor = 0
            while True:
                body = await self.call(
                    "POST",
                    "/topapi/v2/user/list",
                    json_body={"dept_id": dept_id, "cursor": cursor, "size": 100},
                )
                result = body.get("result") or {}
                for user in result.get("list") or []:
                    member = members.setdefault(
                        user["userid"],
                        {
                            "userid": user["userid"],
                            "name": user.get("name", ""),
                            "mobile": user.get("mobile") or None,
                            "job_number": user.get("job_number") or None,
                            "left": False,
                            "departments": [],
                        },
                    )
                    member["departments"].append(dept_id)
                if not result.get("has_more"):
                    break
                cursor = result["next_cursor"]
        return departments, list(members.values())


def _strings(data: dict[str, Any]) -> dict[str, str]:
    """cardParamMap takes strings only; lists and dicts travel as JSON text."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in data.items()
    }
