"""Official Account template messages: which template each patient notice uses, and its keys.

Since 2023-05-04 WeChat shows only the keys of a category-library template (类目模板):
`first` and `remark` are dropped, and each value is cut to what its key's type allows
(《关于规范公众号模板消息的再次公告》, https://mp.weixin.qq.com/s/hvLO4Vs75NXDA__SxuyKXw;
模板消息接口 https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html).
A key's name is its type and a number (`thing1`, `time2`, `character_string3`), and the
numbers differ per template, so the hospital says, per purpose, which template it added
and which of our facts goes into which key (`BEDSIDE_WECHAT_OA_TEMPLATES`):

    {"booking_confirmed": {"template_id": "Xyz…", "data": {"thing1": "item", "time2": "time",
                           "thing3": "room", "character_string4": "receipt_no"}}, …}

`BEDSIDE_WECHAT_OA_TEMPLATE_IDS` ({purpose: template id}) still works, with the keys of
`DEFAULT_DATA`. Values are fitted to the type's limit before sending (`fit`), so the cut
falls where we choose (with "…") rather than where WeChat cuts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Which purpose (template) a notice kind is sent with. A kind not here has no template:
# the patient sees it in the app only.
PURPOSES = {
    "appointment.booked": "booking_confirmed",
    "appointment.reminder": "booking_reminder",
    "appointment.rescheduled": "booking_changed",
    "appointment.cancelled": "booking_changed",
    "followup.due": "followup_due",
}

# Keys used when the hospital names only the template id: those of the usual library
# templates (预约成功通知, 预约提醒, 预约变更通知, 随访提醒); check them against the template.
DEFAULT_DATA: dict[str, dict[str, str]] = {
    "booking_confirmed": {
        "thing1": "item",
        "time2": "time",
        "thing3": "room",
        "character_string4": "receipt_no",
    },
    "booking_reminder": {"thing1": "item", "time2": "time", "thing3": "room"},
    "booking_changed": {"thing1": "item", "time2": "time", "phrase3": "status"},
    "followup_due": {"thing1": "item", "time2": "time"},
}

# Per type: at most this many characters (订阅/模板消息 参数值内容限制: thing 20, number,
# letter, character_string 32, symbol 5, phrase 5 汉字, phone_number 17, car_number 8,
# name 10 汉字 or 20 letters; time and date are formatted, not cut).
LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
    "amount": 14,
}
CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Template:
    purpose: str
    template_id: str
    data: dict[str, str]  # template key -> fact name


def key_type(key: str) -> str:
    return key.rstrip("0123456789")


def fit(key: str, value: str) -> str:
    """`value` as the key's type accepts it: cut with "…" to the limit, only ASCII where
    the type allows no Chinese (character_string, number, letter)."""
    kind = key_type(key)
    value = " ".join(str(value).split())  # no line breaks: WeChat drops what follows one
    if kind in ("character_string", "number", "letter"):
        value = "".join(ch for ch in value if ch.isascii())
    if kind == "name":
        limit = 10 if CJK.search(value) else 20
    else:
        limit = LIMITS.get(kind, 0)
    if limit and len(value) > limit:
        value = value[: limit - 1] + "…" if kind in ("thing", "name") else value[:limit]
    return value


def templates(settings: Any) -> dict[str, Template]:
    """Purpose -> template, from the settings (the detailed form wins over ids alone)."""
    found: dict[str, Template] = {}
    for purpose, template_id in (settings.wechat_oa_template_ids or {}).items():
        if template_id and purpose in DEFAULT_DATA:
            found[purpose] = Template(purpose, template_id, DEFAULT_DATA[purpose])
    for purpose, spec in (settings.wechat_oa_templates or {}).items():
        if isinstance(spec, dict) and spec.get("template_id"):
            data = spec.get("data") or DEFAULT_DATA.get(purpose) or {}
            found[purpose] = Template(purpose, str(spec["template_id"]), dict(data))
    return found


def template_data(template: Template, facts: dict[str, str]) -> dict[str, str]:
    """The message's `data`: each key filled from its fact and fitted to its type."""
    return {key: fit(key, facts.get(fact, "") or "—") for key, fact in template.data.items()}
