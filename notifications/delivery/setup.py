"""Assemble the channels one process delivers through, from settings and the platform
clients that `integrations.platforms` attaches to `services.extras`."""

from __future__ import annotations

from typing import Any

from api.services import Services
from notifications.delivery.channels import Channel
from notifications.delivery.channels.platforms import (
    DingTalkChannel,
    Messenger,
    OfficialAccountChannel,
    WeComChannel,
    platform_messengers,
)
from notifications.delivery.channels.webhook import WebhookChannel
from notifications.delivery.channels.webpush import WebPushChannel
from notifications.delivery.dispatcher import Dispatcher

PLATFORM_CHANNELS = {
    "dingtalk": DingTalkChannel,
    "wecom": WeComChannel,
    "wechat_oa": OfficialAccountChannel,
}


def build_channels(
    services: Services, *, messengers: dict[str, Messenger] | None = None
) -> dict[str, Channel]:
    settings = services.settings
    channels: dict[str, Any] = {}
    if settings.vapid_private_key:
        channels["webpush"] = WebPushChannel(settings.vapid_private_key, settings.vapid_subject)
    if settings.notify_webhook_url:
        channels["webhook"] = WebhookChannel(settings.notify_webhook_url)
    found = platform_messengers(services) if messengers is None else dict(messengers)
    for name, messenger in found.items():
        if name in PLATFORM_CHANNELS and messenger is not None:
            channels[name] = PLATFORM_CHANNELS[name](messenger)
    return channels


def build_dispatcher(services: Services, **kwargs: Any) -> Dispatcher:
    channels = kwargs.pop("channels", None) or build_channels(services)
    return Dispatcher(services, channels, **kwargs)
