"""Structured records from per-item templates: treatment record, assessment, questionnaire.

A template is a list of fields, data on the item (so each specialty shapes its own forms):

    {"name": "pain_score", "label": "疼痛评分 / pain (0-10)", "type": "int",
     "min": 0, "max": 10, "required": true}

Types: text (max_length), int / number (min, max), bool, choice (options), multi
(options, a list), date (ISO). Validation reports every bad field at once: the error's
`field` is the first, `details.errors` maps each field to its reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from api.errors import DomainError, ErrorCode

FIELD_TYPES = {"text", "int", "number", "bool", "choice", "multi", "date"}


def check_template(template: list[dict[str, Any]], *, field: str = "template") -> None:
    """Reject a malformed template when it is saved, not when a nurse fills it in."""
    names = set()
    for spec in template:
        name = spec.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name in names:
            raise DomainError(
                ErrorCode.VALIDATION, f"模板字段名无效 / bad field name: {name!r}", field=field
            )
        names.add(name)
        if spec.get("type") not in FIELD_TYPES:
            raise DomainError(
                ErrorCode.VALIDATION, f"模板字段类型无效 / bad field type for {name}", field=field
            )
        if spec["type"] in ("choice", "multi") and not spec.get("options"):
            raise DomainError(
                ErrorCode.VALIDATION, f"选择题缺少选项 / options missing for {name}", field=field
            )


def _one(spec: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    kind = spec["type"]
    if kind == "text":
        if not isinstance(value, str):
            return None, "应为文本 / must be text"
        limit = int(spec.get("max_length", 2000))
        if len(value) > limit:
            return None, f"不超过 {limit} 字 / at most {limit} characters"
        return value.strip(), None
    if kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "应为数字 / must be a number"
        if kind == "int" and not float(value).is_integer():
            return None, "应为整数 / must be a whole number"
        number = int(value) if kind == "int" else float(value)
        if "min" in spec and number < spec["min"]:
            return None, f"不小于 {spec['min']} / at least {spec['min']}"
        if "max" in spec and number > spec["max"]:
            return None, f"不大于 {spec['max']} / at most {spec['max']}"
        return number, None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, "应为是/否 / must be true or false"
        return value, None
    if kind == "choice":
        if value not in spec["options"]:
            return None, "不在可选项中 / not one of the options"
        return value, None
    if kind == "multi":
        if not isinstance(value, list) or any(v not in spec["options"] for v in value):
            return None, "含不在可选项中的值 / contains a value that is not an option"
        return list(dict.fromkeys(value)), None
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat(), None
        except ValueError:
            return None, "日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD"
    return None, "未知类型 / unknown type"


def validate(
    template: list[dict[str, Any]], data: Any, *, prefix: str = "data", partial: bool = False
) -> dict[str, Any]:
    """The cleaned data, or a VALIDATION error naming each bad field (`data.pain_score`)."""
    if not isinstance(data, dict):
        raise DomainError(
            ErrorCode.VALIDATION, "记录内容应为对象 / record data must be an object", field=prefix
        )
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    known = {spec["name"]: spec for spec in template}
    for name in data:
        if name not in known:
            errors[f"{prefix}.{name}"] = "模板中没有该字段 / not a field of this form"
    for name, spec in known.items():
        value = data.get(name)
        if value is None or value == "" or value == []:
            if spec.get("required") and not partial:
                errors[f"{prefix}.{name}"] = "必填 / required"
            continue
        clean, reason = _one(spec, value)
        if reason:
            errors[f"{prefix}.{name}"] = reason
        else:
            cleaned[name] = clean
    if errors:
        first = next(iter(errors))
        raise DomainError(
            ErrorCode.VALIDATION,
            f"{first}: {errors[first]}",
            field=first,
            details={"errors": errors},
        )
    return cleaned
