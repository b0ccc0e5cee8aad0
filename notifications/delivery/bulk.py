"""Set-based writes for the delivery engine: many rows in one statement.

On PostgreSQL each helper is one statement whatever the number of rows: the values go
as one array per column and `unnest` turns them back into rows on the server, so
10,000 rows cost one parse, one plan and one round trip (an executemany costs one
execution each, which is what made a sweep take seconds). Other databases (the
embedded SQLite) get the portable executemany; they never carry that volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

# Ids per IN (...) list where arrays are not available: under every driver's limit.
IN_CHUNK = 900


def _is_pg(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


def _type(session: AsyncSession, table: sa.Table, column: str) -> str:
    return str(table.c[column].type.compile(dialect=session.bind.dialect))


def _split(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], keep: Sequence[str] = ()
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Per column: the values as one array, or, when every row has the same value (the
    sweep's `now`, a status), that value once: arrays cost the driver per element."""
    arrays: dict[str, list[Any]] = {}
    constants: dict[str, Any] = {}
    for c in columns:
        values = [r[c] for r in rows]
        if c not in keep and values.count(values[0]) == len(values):
            constants[c] = values[0]
        else:
            arrays[c] = values
    return arrays, constants


def id_filters(session: AsyncSession, column: Any, ids: Sequence[int]) -> list[Any]:
    """WHERE clauses that together cover `column IN ids`: one `= ANY(array)` on
    PostgreSQL (one parameter, one cached statement), IN lists of a few hundred
    elsewhere (SQLite's parameter limit)."""
    if not ids:
        return []
    if _is_pg(session):
        return [
            column
            == sa.any_(sa.bindparam("ids", list(ids), type_=ARRAY(sa.Integer()), unique=True))
        ]
    ids = list(ids)
    return [column.in_(ids[i : i + IN_CHUNK]) for i in range(0, len(ids), IN_CHUNK)]


async def insert_rows(
    session: AsyncSession,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
) -> list[Any]:
    """INSERT every row (all rows have the same keys); the `returning` columns of the new
    rows, in no particular order."""
    if not rows:
        return []
    columns = list(rows[0])
    if not _is_pg(session):
        if not returning:
            await session.execute(sa.insert(table), list(rows))
            return []
        stmt = sa.insert(table).returning(*(table.c[c] for c in returning))
        return list((await session.execute(stmt, list(rows))).all())
    quote = session.bind.dialect.identifier_preparer.quote
    arrays, constants = _split(rows, columns, keep=columns[:1])
    values = [
        f"v.{quote(c)}" if c in arrays else f"CAST(:{c} AS {_type(session, table, c)})"
        for c in columns
    ]
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {', '.join(values)} FROM unnest({', '.join(f'CAST(:{c} AS {_type(session, table, c)}[])' for c in arrays)}) "
        f"AS v({', '.join(quote(c) for c in arrays)})"
    )
    if returning:
        sql += f" RETURNING {', '.join(quote(c) for c in returning)}"
    result = await session.execute(sa.text(sql), {**arrays, **constants})
    return list(result.all()) if returning else []


async def update_rows(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]], *, key: str = "id"
) -> None:
    """UPDATE each row identified by `key` to the other values it carries (same keys in
    every row)."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if not _is_pg(session):
        stmt = (
            table.update()
            .where(table.c[key] == sa.bindparam(f"b_{key}"))
            .values({c: sa.bindparam(f"b_{c}") for c in columns})
        )
        await session.execute(stmt, [{f"b_{c}": r[c] for c in (key, *columns)} for r in rows])
        return
    quote = session.bind.dialect.identifier_preparer.quote
    arrays, constants = _split(rows, [key, *columns], keep=[key])
    sets = [
        f"{quote(c)} = v.{quote(c)}"
        if c in arrays
        else f"{quote(c)} = CAST(:{c} AS {_type(session, table, c)})"
        for c in columns
    ]
    sql = (
        f"UPDATE {quote(table.name)} AS t SET {', '.join(sets)} "
        f"FROM unnest({', '.join(f'CAST(:{c} AS {_type(session, table, c)}[])' for c in arrays)}) AS v({', '.join(quote(c) for c in arrays)}) "
        f"WHERE t.{quote(key)} = v.{quote(key)}"
    )
    await session.execute(sa.text(sql), {**arrays, **constants})
