"""The treatment items a hospital offers (医疗服务价格项目) and their templates.

`save_item` creates an item or changes it in place; an item's consent text is versioned
through `records.publish_consent_text`, so a signature stays bound to the text signed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import append_event
from api.auth import Actor
from api.domain.treatments.common import jsonable, require_treatment_staff
from api.domain.treatments.records import current_consent_text, publish_consent_text
from api.domain.treatments.templates import check_template
from api.errors import invalid
from api.models.treatments import TreatmentItem

# The columns an item's owner edits; templates stay as they are when not given.
EDITABLE = (
    "name",
    "name_en",
    "department_id",
    "duration_minutes",
    "price_cents",
    "notes",
    "requires_consent",
    "is_active",
    "record_template",
    "assessment_template",
    "followup_rule",
)


def item_stream(item_id: int) -> str:
    return f"treatment_item:{item_id}"


async def save_item(
    session: AsyncSession,
    *,
    code: str,
    values: dict[str, Any],
    actor: Actor,
    consent: tuple[str, str] | None = None,
) -> tuple[TreatmentItem, str]:
    """Create the item `code` or bring it to `values`; `consent` (title, body) publishes a
    new consent version when it differs from the current one. Returns the item and
    "created", "updated" or "unchanged"."""
    require_treatment_staff(actor)
    code = code.strip()
    if not code:
        raise invalid("code", "不能为空 / required")
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise invalid(sorted(unknown)[0], "不可修改的字段 / not an editable field")
    if "name" in values and not str(values["name"]).strip():
        raise invalid("name", "不能为空 / required")
    if not 5 <= int(values.get("duration_minutes", 30)) <= 480:
        raise invalid("durationMinutes", "时长须在 5-480 分钟 / duration must be 5-480 minutes")
    if int(values.get("price_cents", 0)) < 0:
        raise invalid("price", "价格不能为负 / the price cannot be negative")
    for key in ("record_template", "assessment_template"):
        if key in values:
            check_template(values[key], field=key)
    item = (
        await session.execute(sa.select(TreatmentItem).where(col(TreatmentItem.code) == code))
    ).scalar_one_or_none()
    outcome = "unchanged"
    if item is None:
        if "name" not in values:
            raise invalid("name", "不能为空 / required")
        item = TreatmentItem(code=code, followup_rule={}, **values)
        session.add(item)
        await session.flush()
        assert item.id is not None
        await append_event(
            session,
            item_stream(item.id),
            "created",
            actor=actor,
            data=jsonable(values),  # type: ignore[arg-type]
        )
        outcome = "created"
    else:
        changes = {
            key: [getattr(item, key), value]
            for key, value in values.items()
            if getattr(item, key) != value
        }
        if changes:
            for key, (_, new) in changes.items():
                setattr(item, key, new)
            await session.flush()
            await append_event(
                session,
                item_stream(item.id),  # type: ignore[arg-type]
                "updated",
                actor=actor,
                data={"changes": jsonable(changes)},
            )
            outcome = "updated"
    if consent is not None and consent[1].strip():
        current = await current_consent_text(session, item.id)  # type: ignore[arg-type]
        if current is None or (current.title, current.body) != consent:
            await publish_consent_text(
                session, item, title=consent[0], body=consent[1], actor=actor
            )
            if outcome == "unchanged":
                outcome = "updated"
    return item, outcome
