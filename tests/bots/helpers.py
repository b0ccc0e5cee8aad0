"""Tapping cards the way DingTalk and WeCom deliver the taps."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.bots import BotCard
from api.models.people import User
from api.services import Services
from tests.approvals.helpers import start
from tests.simulators.platforms import (
    DINGTALK_AES_KEY,
    dingtalk_callback,
    dingtalk_card_tap,
    platform_decrypt,
    wecom_callback,
)


async def start_grade4(services: Services, **data: Any) -> int:
    async with services.db.transaction() as session:
        instance = await start(
            session,
            {
                "grade": 4,
                "emergency": False,
                "patient_id": 1,
                "procedure_name": "胰十二指肠切除术",
                **data,
            },
        )
        return instance.id or 0


async def card_of(
    services: Services, instance_id: int, username: str, platform: str = "dingtalk"
) -> BotCard:
    async with services.db.session() as session:
        return (
            (
                await session.execute(
                    sa.select(BotCard)
                    .join(User, User.id == BotCard.user_id)
                    .where(
                        BotCard.instance_id == instance_id,
                        User.username == username,
                        BotCard.platform == platform,
                    )
                    .order_by(BotCard.id.desc())
                )
            )
            .scalars()
            .first()
        )


async def status_of(services: Services, instance_id: int) -> str:
    async with services.db.session() as session:
        return (await session.get(ApprovalInstance, instance_id)).status


async def task_statuses(services: Services, instance_id: int) -> list[tuple[str, str]]:
    async with services.db.session() as session:
        rows = await session.execute(
            sa.select(ApprovalTask.step_id, ApprovalTask.status)
            .where(ApprovalTask.instance_id == instance_id)
            .order_by(ApprovalTask.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def dingtalk_tap(
    http: httpx.AsyncClient, out_track_id: str, userid: str, action: str = "approve", **kwargs: Any
) -> httpx.Response:
    params, body = dingtalk_callback(
        dingtalk_card_tap(out_track_id=out_track_id, userid=userid, action=action), **kwargs
    )
    return await http.post("/bots/dingtalk/callback", params=params, json=body)


def assert_dingtalk_success(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert platform_decrypt(answer["encrypt"], DINGTALK_AES_KEY)[0] == "success"


async def wecom_tap(
    http: httpx.AsyncClient,
    task_id: str,
    userid: str,
    action: str = "approve",
    response_code: str = "rc-1",
    **kwargs: Any,
) -> httpx.Response:
    fields = {
        "ToUserName": "wwsimcorp0001",
        "FromUserName": userid,
        "CreateTime": 1700000000,
        "MsgType": "event",
        "Event": "template_card_event",
        "EventKey": action,
        "TaskId": task_id,
        "CardType": "button_interaction",
        "ResponseCode": response_code,
        "AgentID": 1000002,
    }
    params, xml = wecom_callback(fields, **kwargs)
    return await http.post("/bots/wecom/callback", params=params, content=xml.encode())
