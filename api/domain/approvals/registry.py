"""Publishing process definitions and finding the version an instance runs on.

A published (key, version) is immutable: publishing the same body again changes nothing,
publishing a different body under an existing version is refused. A new version affects
only instances started after it; a running instance keeps `definition_id`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import canonical_json
from api.domain.approvals.definition import Definition, parse_definition
from api.errors import DomainError, ErrorCode
from api.models.approvals import ApprovalDefinition
from api.models.base import utcnow

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"

# Parsed definitions by their canonical body: a published row never changes, and keying
# by content (not row id) stays right when a database is recreated under a process.
_parsed: dict[str, Definition] = {}


def load_source(source: str) -> dict[str, Any]:
    """YAML or JSON text (JSON is YAML) to a mapping; a syntax error names `definition`."""
    try:
        body = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise DomainError(
            ErrorCode.VALIDATION,
            f"流程定义格式错误 / definition is not valid YAML or JSON: {exc}",
            field="definition",
        ) from None
    if not isinstance(body, dict):
        raise DomainError(
            ErrorCode.VALIDATION,
            "流程定义必须是对象 / a definition must be a mapping",
            field="definition",
        )
    return body


async def publish_definition(session: AsyncSession, body: dict[str, Any]) -> ApprovalDefinition:
    """Validate and store one version; idempotent for an identical body."""
    definition = parse_definition(body)
    stored_body = definition.body.model_dump(mode="json", by_alias=True, exclude_none=True)
    existing = (
        await session.execute(
            sa.select(ApprovalDefinition).where(
                ApprovalDefinition.key == definition.key,
                ApprovalDefinition.version == definition.version,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        if canonical_json(existing.body) != canonical_json(stored_body):
            raise DomainError(
                ErrorCode.CONFLICT,
                f"流程 {definition.key} 第 {definition.version} 版已发布且不可修改，请提升版本号 / "
                f"{definition.key} v{definition.version} is already published with a different body; publish a new version",
                field="definition",
            )
        return existing
    row = ApprovalDefinition(
        key=definition.key, version=definition.version, body=stored_body, published_at=utcnow()
    )
    session.add(row)
    await session.flush()
    _parsed[canonical_json(stored_body)] = definition
    return row


def _definition_files(directory: Path) -> list[tuple[str, str]]:
    """(file name, text) of every definition file; a handful of small files read at startup."""
    return [
        (path.name, path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.yaml"))
    ]


async def publish_definitions(
    session: AsyncSession, directory: Path = DEFINITIONS_DIR
) -> list[ApprovalDefinition]:
    """Publish every `<key>.v<N>.yaml` in `directory` (the repository's definitions)."""
    rows = []
    for name, text in _definition_files(directory):
        body = load_source(text)
        if name.removesuffix(".yaml") != f"{body.get('key')}.v{body.get('version')}":
            raise DomainError(
                ErrorCode.VALIDATION,
                f"文件名与 key/version 不符 / {name} does not match its key and version",
                field="definition",
            )
        rows.append(await publish_definition(session, body))
    return rows


def parse_stored(row: ApprovalDefinition) -> Definition:
    key = canonical_json(row.body)
    if key not in _parsed:
        _parsed[key] = parse_definition(row.body)
    return _parsed[key]


async def definition_by_id(
    session: AsyncSession, definition_id: int
) -> tuple[ApprovalDefinition, Definition]:
    row = await session.get(ApprovalDefinition, definition_id)
    if row is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, "流程定义不存在 / definition not found", field="definitionId"
        )
    return row, parse_stored(row)


async def latest_definition(
    session: AsyncSession, key: str
) -> tuple[ApprovalDefinition, Definition]:
    """The newest published version of `key` (what a new instance starts on)."""
    row = (
        await session.execute(
            sa.select(ApprovalDefinition)
            .where(ApprovalDefinition.key == key)
            .order_by(ApprovalDefinition.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"流程未发布 / no published definition: {key}",
            field="definitionKey",
        )
    return row, parse_stored(row)
