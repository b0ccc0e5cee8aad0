"""DingTalk's approval card: its data and sending it (interactive card API), and the
binding prompt after a tap by someone not yet bound."""

from __future__ import annotations

import logging
from urllib.parse import quote

from api.models.bots import BotCard
from api.services import Services
from integrations.platforms import DingTalkClient, PlatformError, RateLimited, get_platforms

log = logging.getLogger("bedside.bots.dingtalk")


def in_app_link(url: str) -> str:
    """Open a page inside DingTalk (side panel on the desktop)."""
    return f"dingtalk://dingtalkclient/page/link?url={quote(url, safe='')}&pc_slide=true"


def card_data(card: BotCard) -> dict[str, str]:
    wanted = card.wanted
    facts = dict(wanted.get("facts") or {})
    detail = facts.pop("detail_url", "")
    return {
        **facts,
        "state": wanted.get("state", ""),
        "outcome": wanted.get("outcome", ""),
        "note": wanted.get("note", ""),
        "actionable": "true" if wanted.get("state") == "pending" else "false",
        "detail_url": in_app_link(detail) if detail else "",
    }


async def send_card(services: Services, client: DingTalkClient, card: BotCard) -> None:
    """Create and deliver the card; a retry after an attempt whose outcome was lost (the
    card may exist already) delivers the existing card and brings its data up to date."""
    try:
        await client.create_and_deliver_card(
            out_track_id=card.card_key, userid=card.external_id, card_data=card_data(card)
        )
    except RateLimited:
        raise
    except PlatformError as first:
        if first.code == "NOT_DELIVERED" or (first.status or 500) >= 500:
            raise
        # Refused: maybe because this outTrackId exists (DingTalk documents no code for
        # that); if the card exists, delivering and updating it succeeds, else the first
        # error stands.
        try:
            await client.update_card(out_track_id=card.card_key, card_data=card_data(card))
        except PlatformError:
            raise first from None
        await client.deliver_card(out_track_id=card.card_key, userid=card.external_id)


async def update_card(services: Services, client: DingTalkClient, card: BotCard) -> None:
    await client.update_card(out_track_id=card.card_key, card_data=card_data(card))


async def send_bind_prompt(services: Services, external_id: str, link: str, message: str) -> None:
    client = get_platforms(services).dingtalk
    try:
        await client.send_action_card_notice(
            [external_id],
            "绑定 Bedside 账号",
            f"### 请先绑定 Bedside 账号\n\n{message}",
            "去绑定 / Bind",
            in_app_link(link),
        )
    except PlatformError as exc:
        log.warning("binding prompt not sent: %s", exc)
