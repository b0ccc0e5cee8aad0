"""Statistics (数据统计): workload per therapist, item or department; sessions, no-show
rate and revenue by day, ISO week or month (local days); exported to Excel.

- sessions / revenue: archived treatment records (the price is the item's price when the
  session was executed), counted on the local day they were archived;
- no-show rate: noshow / (noshow + fulfilled) of appointments due in the period.
Oversight roles (admin, medical affairs, vice-president) see every department; other
staff see their own department.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.domain.treatments.common import HOSPITAL_TZ, OVERSIGHT, is_staff, local_day_bounds
from api.errors import forbidden, invalid
from api.models.people import Department, User
from api.models.treatments import Appointment, AppointmentStatus, TreatmentItem, TreatmentRecord

PERIODS = ("day", "week", "month")
GROUPS = ("therapist", "item", "department")


@dataclass
class StatRow:
    period: str
    key: str
    label: str
    sessions: int = 0
    revenue_cents: int = 0
    fulfilled: int = 0
    no_shows: int = 0

    @property
    def no_show_rate(self) -> float:
        due = self.fulfilled + self.no_shows
        return round(self.no_shows / due, 4) if due else 0.0


def period_key(moment: datetime, period: str, tz: ZoneInfo) -> str:
    day = moment.astimezone(tz).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day:%Y-%m}"


async def treatment_statistics(
    session: AsyncSession,
    actor: Actor,
    *,
    start: date,
    end: date,
    period: str = "day",
    group_by: str = "therapist",
    tz: ZoneInfo = HOSPITAL_TZ,
) -> list[StatRow]:
    if not is_staff(actor) and not actor.has_role(*OVERSIGHT):
        raise forbidden("无权查看统计 / not allowed to see statistics")
    if period not in PERIODS:
        raise invalid("period", "统计周期须为 day/week/month / period must be day, week or month")
    if group_by not in GROUPS:
        raise invalid(
            "groupBy", "分组须为 therapist/item/department / group by therapist, item or department"
        )
    if end < start or (end - start).days > 366:
        raise invalid("to", "日期范围无效（最长一年）/ invalid range (at most a year)")
    begins, _ = local_day_bounds(start, tz)
    _, ends = local_day_bounds(end, tz)
    scoped = not actor.has_role(*OVERSIGHT)

    record_key = {
        "therapist": TreatmentRecord.therapist_id,
        "item": TreatmentRecord.item_id,
        "department": TreatmentRecord.department_id,
    }[group_by]
    records = sa.select(TreatmentRecord.archived_at, record_key, TreatmentRecord.price_cents).where(
        TreatmentRecord.status == "archived",
        TreatmentRecord.archived_at >= begins,
        TreatmentRecord.archived_at < ends,
        TreatmentRecord.deleted_at.is_(None),
    )
    if scoped:
        records = records.where(TreatmentRecord.department_id == actor.department_id)

    appointment_key = {
        "therapist": Appointment.therapist_id,
        "item": Appointment.item_id,
        "department": TreatmentItem.department_id,
    }[group_by]
    due = (
        sa.select(Appointment.starts_at, appointment_key, Appointment.status)
        .join(TreatmentItem, TreatmentItem.id == Appointment.item_id)
        .where(
            Appointment.starts_at >= begins,
            Appointment.starts_at < ends,
            Appointment.deleted_at.is_(None),
            Appointment.status.in_(
                [AppointmentStatus.FULFILLED.value, AppointmentStatus.NOSHOW.value]
            ),
        )
    )
    if scoped:
        due = due.where(TreatmentItem.department_id == actor.department_id)

    rows: dict[tuple[str, str], StatRow] = {}

    def row(at: datetime, key: int | None) -> StatRow:
        label_key = (period_key(at, period, tz), str(key or ""))
        if label_key not in rows:
            rows[label_key] = StatRow(period=label_key[0], key=label_key[1], label="")
        return rows[label_key]

    for at, key, price in (await session.execute(records)).all():
        stat = row(at, key)
        stat.sessions += 1
        stat.revenue_cents += price or 0
    for at, key, status in (await session.execute(due)).all():
        stat = row(at, key)
        if status == AppointmentStatus.NOSHOW:
            stat.no_shows += 1
        else:
            stat.fulfilled += 1
    labels = await _labels(session, group_by, {int(k) for _, k in rows if k})
    for (_, key), stat in rows.items():
        stat.label = labels.get(int(key), "") if key else "未指定 / unassigned"
    return [rows[k] for k in sorted(rows)]


async def _labels(session: AsyncSession, group_by: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    model, column = {
        "therapist": (User, User.display_name),
        "item": (TreatmentItem, TreatmentItem.name),
        "department": (Department, Department.name),
    }[group_by]
    result = await session.execute(sa.select(model.id, column).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {i: name for i, name in result.all()}


HEADERS = [
    "周期 Period",
    "分组 Group",
    "名称 Name",
    "治疗人次 Sessions",
    "收入(元) Revenue (CNY)",
    "完成预约 Fulfilled",
    "爽约 No-shows",
    "爽约率 No-show rate",
]


def statistics_workbook(rows: list[StatRow], *, title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "治疗统计 Statistics"
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(HEADERS)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for r in rows:
        sheet.append(
            [
                r.period,
                r.key,
                r.label,
                r.sessions,
                r.revenue_cents / 100,
                r.fulfilled,
                r.no_shows,
                r.no_show_rate,
            ]
        )
    for column, width in zip("ABCDEFGH", (14, 8, 18, 16, 20, 16, 14, 16), strict=True):
        sheet.column_dimensions[column].width = width
    for cell in sheet["H"][2:]:
        cell.number_format = "0.00%"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def export_statistics(
    session: AsyncSession,
    actor: Actor,
    *,
    start: date,
    end: date,
    period: str = "day",
    group_by: str = "therapist",
    tz: ZoneInfo = HOSPITAL_TZ,
) -> tuple[str, bytes]:
    """The Excel file and its name; the export is written to the access log."""
    rows = await treatment_statistics(
        session, actor, start=start, end=end, period=period, group_by=group_by, tz=tz
    )
    title = f"治疗统计 Treatment statistics {start.isoformat()} ~ {end.isoformat()} ({period}, {group_by})"
    data = statistics_workbook(rows, title=title)
    await record_access(
        session,
        actor,
        "treatment_statistics",
        action="export",
        detail={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "period": period,
            "group_by": group_by,
            "rows": len(rows),
        },
    )
    return f"treatment-statistics-{start:%Y%m%d}-{end:%Y%m%d}-{group_by}-{period}.xlsx", data


def group_totals(rows: list[StatRow]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals["sessions"] += r.sessions
        totals["revenue_cents"] += r.revenue_cents
        totals["no_shows"] += r.no_shows
        totals["fulfilled"] += r.fulfilled
    return dict(totals)
