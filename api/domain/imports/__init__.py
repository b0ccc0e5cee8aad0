"""Loading a hospital's own data from spreadsheets: departments, staff, the surgery
catalog, treatment items, schedules and the penalty catalog (negative list).

One module per kind, each with `COLUMNS` (the file's columns, Chinese and English),
`parse(values) -> record` (reads one row's cells, raising `FieldError`), `key(record)`
(what makes a row unique in a file) and `apply(ctx, record) -> Outcome` (creates or updates
through the area's own domain actions). `run_import` reads every row first and reports
every bad cell; then applies the rows in the caller's transaction, mapping a domain
refusal to its row and column. The caller commits only when `report.ok` and not a dry
run: nothing is written when any row fails.

Re-importing the same file changes nothing (each row compares before it writes); a
changed row updates, as a new version where the area versions its data (penalty items,
consent texts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor, PasswordHashing
from api.domain.imports import catalog, departments, items, penalty_items, schedules, staff
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.kinds import ORDER
from api.domain.imports.table import Column, FieldError, FileError, read_table, write_template
from api.errors import DomainError
from api.settings import Settings

KINDS: dict[str, ModuleType] = {
    "departments": departments,
    "staff": staff,
    "catalog": catalog,
    "items": items,
    "schedules": schedules,
    "penalty-items": penalty_items,
}


@dataclass
class RowOutcome(Outcome):
    row: int = 0


@dataclass
class RowError:
    row: int | None  # None: the file as a whole
    column: Column | None
    message: str

    def __str__(self) -> str:
        where = f"第{self.row}行 row {self.row}" if self.row else "文件 file"
        if self.column is not None:
            where += f" {self.column.label}"
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    kind: str
    rows: list[RowOutcome] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def summary(self) -> str:
        return (
            f"新增 {self.count(CREATE)}，更新 {self.count(UPDATE)}，未变 {self.count(UNCHANGED)}"
            f" / created {self.count(CREATE)}, updated {self.count(UPDATE)},"
            f" unchanged {self.count(UNCHANGED)}"
        )


def kind_module(kind: str) -> ModuleType:
    try:
        return KINDS[kind]
    except KeyError:
        raise FileError(
            f"未知导入类型 / unknown kind {kind!r}; one of: {', '.join(ORDER)}"
        ) from None


def template(kind: str, path: Path) -> None:
    module = kind_module(kind)
    write_template(path, module.TITLE, module.COLUMNS)


def _column(module: ModuleType, key: str | None) -> Column | None:
    if key is None:
        return None
    key = module.FIELDS.get(key, key)
    return next((c for c in module.COLUMNS if c.key == key), None)


async def run_import(
    session: AsyncSession,
    kind: str,
    path: Path,
    *,
    actor: Actor,
    settings: Settings,
    hashing: PasswordHashing | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Read, check and apply `path` in the caller's transaction (see the module doc)."""
    module = kind_module(kind)
    report = ImportReport(kind)
    try:
        rows = read_table(path, module.COLUMNS)
    except FileError as exc:
        report.errors.append(RowError(None, None, str(exc)))
        return report

    records: list[tuple[int, Any]] = []
    seen: dict[Any, int] = {}
    for row in rows:
        try:
            record = module.parse(row.values)
        except FieldError as exc:
            report.errors.append(RowError(row.number, _column(module, exc.column), exc.message))
            continue
        key = module.key(record)
        if key in seen:
            report.errors.append(
                RowError(
                    row.number,
                    _column(module, module.KEY_COLUMN),
                    f"与第{seen[key]}行重复 / same as row {seen[key]}",
                )
            )
            continue
        seen[key] = row.number
        records.append((row.number, record))
    if report.errors:
        return report

    ctx = ImportContext(session=session, actor=actor, settings=settings, hashing=hashing)
    if hasattr(module, "prepare"):
        await module.prepare(ctx)
    total = len(records)
    for done, (number, record) in enumerate(records, start=1):
        ctx.cache["row"] = number
        try:
            outcome = await module.apply(ctx, record)
        except FieldError as exc:
            report.errors.append(RowError(number, _column(module, exc.column), exc.message))
        except DomainError as exc:
            report.errors.append(RowError(number, _column(module, exc.field), exc.message))
        else:
            report.rows.append(RowOutcome(outcome.action, outcome.what, outcome.changes, number))
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)
    if hasattr(module, "finish"):
        try:
            for number, column, message in await module.finish(ctx, write=not report.errors):
                report.errors.append(RowError(number, _column(module, column), message))
        except DomainError as exc:
            report.errors.append(RowError(None, _column(module, exc.field), exc.message))
    report.errors.sort(key=lambda e: e.row or 0)
    return report


__all__ = [
    "KINDS",
    "ORDER",
    "Column",
    "FieldError",
    "FileError",
    "ImportContext",
    "ImportReport",
    "Outcome",
    "RowError",
    "run_import",
    "template",
]
