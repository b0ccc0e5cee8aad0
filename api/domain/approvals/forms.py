"""A process's form (表单), as data inside its definition, and the check of what is filled in.

The form is versioned with the definition it sits in: an instance points at the definition
version it started on, so it keeps that form for good. For example::

    form:
      fields:
        - key: leave_type
          label: {zh: 请假类型, en: Leave type}
          type: choice
          required: true
          options:
            - {value: annual, label: {zh: 年假, en: Annual leave}}
            - {value: sick, label: {zh: 病假, en: Sick leave}}
        - key: days
          label: {zh: 天数, en: Days}
          type: number
          unit: {zh: 天, en: days}
          min: 0.5
          max: 60
          required: true
        - key: certificate
          label: {zh: 病假证明, en: Sick note}
          type: attachment
          required_if: {field: leave_type, op: "==", value: sick}

Field types: text, number (unit, min/max, integer), date (YYYY-MM-DD), datetime (ISO 8601
with an offset; stored in UTC), choice, multi_choice, person (a username), department
(a department code), patient (a patient id; the field's key is `patient_id`, so reading
the instance is access-logged like every application about a patient), attachment (the
sha256 digests of files the applicant uploaded).

`check_form` is pure (shapes, ranges, options, required and required-if);
`check_references` then looks up the people, departments, patients and files named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.domain.approvals.conditions import IDENT, Compare, Condition, LocalizedName, holds
from api.errors import DomainError, ErrorCode
from api.models.patients import Patient
from api.models.people import Department, User
from api.models.treatments import Attachment

FieldType = Literal[
    "text",
    "number",
    "date",
    "datetime",
    "choice",
    "multi_choice",
    "person",
    "department",
    "patient",
    "attachment",
]
PATIENT_FIELD_KEY = "patient_id"  # the same key the approval access rules read
MAX_ATTACHMENTS = 20
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    value: str = Field(min_length=1, max_length=60)
    label: LocalizedName


class FormField(_Strict):
    key: str = Field(pattern=IDENT)
    label: LocalizedName
    type: FieldType
    required: bool | None = None
    required_if: Condition | None = None
    help: LocalizedName | None = None
    # text
    max_length: int | None = Field(default=None, ge=1, le=5000)
    multiline: bool | None = None
    # number
    unit: LocalizedName | None = None
    min: float | None = None
    max: float | None = None
    integer: bool | None = None
    # choice, multi_choice
    options: list[Option] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _fits_type(self) -> FormField:
        choice = self.type in ("choice", "multi_choice")
        if choice and not self.options:
            raise ValueError(f"field {self.key!r}: a {self.type} field needs options")
        if not choice and self.options is not None:
            raise ValueError(f"field {self.key!r}: only choice fields have options")
        if self.options and len({o.value for o in self.options}) != len(self.options):
            raise ValueError(f"field {self.key!r}: option values repeat")
        numeric = (self.unit, self.min, self.max, self.integer)
        if self.type != "number" and any(v is not None for v in numeric):
            raise ValueError(f"field {self.key!r}: unit, min, max, integer are for numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.key!r}: min is above max")
        if self.type != "text" and (self.max_length is not None or self.multiline is not None):
            raise ValueError(f"field {self.key!r}: max_length and multiline are for text")
        if self.type == "patient" and self.key != PATIENT_FIELD_KEY:
            raise ValueError(f"a patient field's key is {PATIENT_FIELD_KEY!r}")
        return self

    def is_required(self, data: dict[str, Any]) -> bool:
        if self.required:
            return True
        return self.required_if is not None and holds(self.required_if, data)


class Form(_Strict):
    fields: list[FormField] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _keys(self) -> Form:
        keys = [f.key for f in self.fields]
        if len(set(keys)) != len(keys):
            raise ValueError("form field keys repeat")
        for f in self.fields:
            for name in _condition_fields(f.required_if):
                if name not in keys:
                    raise ValueError(f"field {f.key!r}: required_if names unknown field {name!r}")
        return self

    def field(self, key: str) -> FormField | None:
        return next((f for f in self.fields if f.key == key), None)


def _condition_fields(condition: Any) -> list[str]:
    if condition is None:
        return []
    if isinstance(condition, Compare):
        return [condition.field]
    for attr in ("all", "any"):
        if hasattr(condition, attr):
            return [n for c in getattr(condition, attr) for n in _condition_fields(c)]
    return _condition_fields(getattr(condition, "not_", None))


def _error(f: FormField, zh: str, en: str) -> DomainError:
    label_en = f.label.en or f.key
    return DomainError(
        ErrorCode.VALIDATION, f"{f.label.zh}：{zh} / {label_en}: {en}", field=f"form.{f.key}"
    )


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _number(f: FormField, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error(f, "请填写数字", "must be a number")
    if f.integer and value != int(value):
        raise _error(f, "请填写整数", "must be a whole number")
    unit_zh = f.unit.zh if f.unit else ""
    unit_en = f" {f.unit.en}" if f.unit and f.unit.en else ""
    if f.min is not None and value < f.min:
        raise _error(f, f"不能小于 {f.min:g}{unit_zh}", f"must be at least {f.min:g}{unit_en}")
    if f.max is not None and value > f.max:
        raise _error(f, f"不能大于 {f.max:g}{unit_zh}", f"must be at most {f.max:g}{unit_en}")
    return int(value) if f.integer else value


def _date(f: FormField, value: Any) -> str:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise _error(f, "日期格式应为 YYYY-MM-DD", "must be a date, YYYY-MM-DD") from None


def _datetime(f: FormField, value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _error(f, "时间格式无效", "must be a date and time (ISO 8601)") from None
    if parsed.tzinfo is None:
        raise _error(f, "时间须带时区", "must carry a time zone offset")
    return parsed.astimezone(UTC).isoformat()


def _choice(f: FormField, value: Any) -> str:
    if not isinstance(value, str) or value not in {o.value for o in f.options or []}:
        raise _error(f, "请从选项中选择", "must be one of the options")
    return value


def _multi_choice(f: FormField, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _error(f, "请从选项中选择（可多选）", "must be a list of options")
    chosen = [_choice(f, v) for v in value]
    if len(set(chosen)) != len(chosen):
        raise _error(f, "选项重复", "an option is chosen twice")
    return chosen


def _text(f: FormField, value: Any) -> str:
    if not isinstance(value, str):
        raise _error(f, "请填写文字", "must be text")
    limit = f.max_length or 500
    if len(value.strip()) > limit:
        raise _error(f, f"不能超过 {limit} 字", f"longer than {limit} characters")
    return value.strip()


def _name(f: FormField, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 80:
        raise _error(f, "请选择", "must be chosen")
    return value.strip()


def _patient(f: FormField, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _error(f, "请选择患者", "must be a patient")
    return value


def _attachments(f: FormField, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(f, "附件无效", "must be a list of uploaded files")
    digests = list(dict.fromkeys(v.strip().lower() for v in value))
    if len(digests) > MAX_ATTACHMENTS:
        raise _error(f, f"最多 {MAX_ATTACHMENTS} 个附件", f"at most {MAX_ATTACHMENTS} files")
    if not all(SHA256.match(d) for d in digests):
        raise _error(f, "附件无效", "must be a list of uploaded files")
    return digests


_CHECKS = {
    "text": _text,
    "number": _number,
    "date": _date,
    "datetime": _datetime,
    "choice": _choice,
    "multi_choice": _multi_choice,
    "person": _name,
    "department": _name,
    "patient": _patient,
    "attachment": _attachments,
}


def check_form(form: Form, data: Any) -> dict[str, Any]:
    """The filled-in form, normalised; the first problem is a VALIDATION error on `form.<key>`.

    Empty values ("", [], null) count as not filled in and are left out. Required-if
    conditions are evaluated over the values filled in, as submitted (the app shows a
    field as required by the same rule).
    """
    if not isinstance(data, dict):
        raise DomainError(
            ErrorCode.VALIDATION, "表单必须是对象 / the form must be an object", field="form"
        )
    known = {f.key for f in form.fields}
    for key in data:
        if key not in known:
            raise DomainError(
                ErrorCode.VALIDATION,
                f"表单中没有字段“{key}” / the form has no field {key!r}",
                field=f"form.{key}"[:80],
            )
    filled = {k: v for k, v in data.items() if not _empty(v)}
    cleaned: dict[str, Any] = {}
    for f in form.fields:
        value = data.get(f.key)
        if _empty(value):
            if f.is_required(filled):
                raise _error(f, "必填", "required")
            continue
        cleaned[f.key] = _CHECKS[f.type](f, value)
    return cleaned


async def check_references(
    session: AsyncSession, form: Form, cleaned: dict[str, Any], *, uploader_id: int
) -> None:
    """The people, departments, patients and files a filled-in form names exist."""
    for f in form.fields:
        value = cleaned.get(f.key)
        if value is None:
            continue
        if f.type == "person":
            found = await session.scalar(
                sa.select(col(User.id)).where(col(User.username) == value, col(User.is_active))
            )
            if found is None:
                raise _error(f, "查无此人", "no such person")
        elif f.type == "department":
            found = await session.scalar(
                sa.select(col(Department.id)).where(col(Department.code) == value)
            )
            if found is None:
                raise _error(f, "查无此科室", "no such department")
        elif f.type == "patient":
            if await session.get(Patient, value) is None:
                raise _error(f, "查无此患者", "no such patient")
        elif f.type == "attachment":
            stored = set(
                (
                    await session.execute(
                        sa.select(col(Attachment.sha256)).where(
                            col(Attachment.sha256).in_(value),
                            col(Attachment.uploaded_by_id) == uploader_id,
                            col(Attachment.deleted_at).is_(None),
                        )
                    )
                ).scalars()
            )
            if any(d not in stored for d in value):
                raise _error(
                    f, "附件尚未上传成功，请重新上传", "a file was not uploaded; upload it again"
                )


# --- reading a filled-in form ----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One filled-in field as a person reads it, under the form's label, in each language."""

    key: str
    type: str
    value: Any
    label_zh: str
    label_en: str
    text_zh: str
    text_en: str


def _shown_number(value: Any, unit: LocalizedName | None) -> tuple[str, str]:
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    if unit is None:
        return shown, shown
    return f"{shown} {unit.zh}", f"{shown} {unit.en or unit.zh}"


async def describe_answers(
    session: AsyncSession, form: Form, data: dict[str, Any], tz: ZoneInfo
) -> list[Answer]:
    """The answers in the form's order: choices by their labels, numbers with their unit,
    times in `tz`, people and departments by name, patients by name and record number."""
    answers = []
    for f in form.fields:
        if f.key not in data:
            continue
        value = data[f.key]
        zh = en = str(value)
        if f.type == "number":
            zh, en = _shown_number(value, f.unit)
        elif f.type in ("choice", "multi_choice"):
            labels = {o.value: o.label for o in f.options or []}
            chosen = value if isinstance(value, list) else [value]
            zh = "、".join(labels[v].zh if v in labels else str(v) for v in chosen)
            en = ", ".join(
                (labels[v].en or labels[v].zh) if v in labels else str(v) for v in chosen
            )
        elif f.type == "datetime" and isinstance(value, str):
            zh = en = datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        elif f.type == "person":
            user = (
                await session.execute(sa.select(User).where(col(User.username) == value))
            ).scalar_one_or_none()
            if user is not None:
                zh = en = user.display_name or user.username
        elif f.type == "department":
            dept = (
                await session.execute(sa.select(Department).where(col(Department.code) == value))
            ).scalar_one_or_none()
            if dept is not None:
                zh, en = dept.name, dept.name_en or dept.name
        elif f.type == "patient":
            patient = await session.get(Patient, value) if isinstance(value, int) else None
            if patient is not None:
                zh = en = f"{patient.name}（{patient.mrn}）"
        elif f.type == "attachment":
            count = len(value) if isinstance(value, list) else 0
            zh, en = f"{count} 个附件", f"{count} file(s)"
        answers.append(Answer(f.key, f.type, value, f.label.zh, f.label.en or f.label.zh, zh, en))
    return answers
