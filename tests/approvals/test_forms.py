"""The form validator, case by case (pure: no database). Expected values are worked by hand."""

from __future__ import annotations

from typing import Any

import pytest

from api.domain.approvals import Form, check_form, parse_definition
from api.errors import DomainError

FORM = Form.model_validate(
    {
        "fields": [
            {
                "key": "kind",
                "label": {"zh": "类型", "en": "Kind"},
                "type": "choice",
                "required": True,
                "options": [
                    {"value": "a", "label": {"zh": "甲"}},
                    {"value": "b", "label": {"zh": "乙"}},
                ],
            },
            {
                "key": "days",
                "label": {"zh": "天数", "en": "Days"},
                "type": "number",
                "unit": {"zh": "天", "en": "days"},
                "min": 0.5,
                "max": 10,
            },
            {"key": "count", "label": {"zh": "份数"}, "type": "number", "integer": True, "min": 1},
            {"key": "on", "label": {"zh": "日期", "en": "Date"}, "type": "date"},
            {"key": "at", "label": {"zh": "时间", "en": "Time"}, "type": "datetime"},
            {
                "key": "tags",
                "label": {"zh": "标签", "en": "Tags"},
                "type": "multi_choice",
                "options": [
                    {"value": "x", "label": {"zh": "X"}},
                    {"value": "y", "label": {"zh": "Y"}},
                ],
            },
            {"key": "note", "label": {"zh": "说明", "en": "Note"}, "type": "text", "max_length": 5},
            {"key": "who", "label": {"zh": "交接人", "en": "Deputy"}, "type": "person"},
            {"key": "dept", "label": {"zh": "科室", "en": "Department"}, "type": "department"},
            {"key": "patient_id", "label": {"zh": "患者", "en": "Patient"}, "type": "patient"},
            {
                "key": "proof",
                "label": {"zh": "证明", "en": "Proof"},
                "type": "attachment",
                # required when kind is b and more than 3 days
                "required_if": {
                    "all": [
                        {"field": "kind", "op": "==", "value": "b"},
                        {"field": "days", "op": ">", "value": 3},
                    ]
                },
            },
        ]
    }
)
DIGEST = "ab" * 32


def refused(data: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        check_form(FORM, data)
    assert caught.value.code == "VALIDATION"
    return caught.value


def test_minimal_form_is_accepted_and_empty_values_left_out() -> None:
    assert check_form(FORM, {"kind": "a", "note": "", "tags": [], "who": None}) == {"kind": "a"}


def test_values_are_normalised() -> None:
    cleaned = check_form(
        FORM,
        {
            "kind": "b",
            "days": 2.5,
            "count": 3.0,  # a whole number written as 3.0 is the integer 3
            "on": "2026-03-01",
            "at": "2026-03-01T09:30:00+08:00",  # 09:30 in Shanghai is 01:30 UTC
            "tags": ["y", "x"],
            "note": "  ok  ",
            "who": " dr.qian ",
            "dept": "GS",
            "patient_id": 7,
            "proof": [DIGEST.upper()],
        },
    )
    assert cleaned == {
        "kind": "b",
        "days": 2.5,
        "count": 3,
        "on": "2026-03-01",
        "at": "2026-03-01T01:30:00+00:00",
        "tags": ["y", "x"],
        "note": "ok",
        "who": "dr.qian",
        "dept": "GS",
        "patient_id": 7,
        "proof": [DIGEST],
    }


def test_required_field_missing_names_it_in_both_languages() -> None:
    error = refused({"days": 1})
    assert error.field == "form.kind"
    assert error.message == "类型：必填 / Kind: required"


@pytest.mark.parametrize(
    ("data", "needed"),
    [
        ({"kind": "b", "days": 4}, True),  # both parts hold
        ({"kind": "b", "days": 3}, False),  # 3 is not more than 3
        ({"kind": "a", "days": 9}, False),  # kind is not b
        ({"kind": "b"}, False),  # days absent: "> 3" does not hold
    ],
)
def test_required_if(data: dict[str, Any], needed: bool) -> None:
    if needed:
        error = refused(data)
        assert error.field == "form.proof"
        assert "证明：必填" in error.message
        assert check_form(FORM, {**data, "proof": [DIGEST]})["proof"] == [DIGEST]
    else:
        assert "proof" not in check_form(FORM, data)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"days": 0.4}, "form.days", "天数：不能小于 0.5天 / Days: must be at least 0.5 days"),
        ({"days": 10.5}, "form.days", "天数：不能大于 10天 / Days: must be at most 10 days"),
        ({"days": "3"}, "form.days", "天数：请填写数字 / Days: must be a number"),
        ({"days": True}, "form.days", "天数：请填写数字 / Days: must be a number"),
        ({"count": 1.5}, "form.count", "份数：请填写整数 / count: must be a whole number"),
        ({"count": 0}, "form.count", "份数：不能小于 1 / count: must be at least 1"),
        ({"kind": "c"}, "form.kind", "类型：请从选项中选择 / Kind: must be one of the options"),
        (
            {"tags": "x"},
            "form.tags",
            "标签：请从选项中选择（可多选） / Tags: must be a list of options",
        ),
        (
            {"tags": ["x", "z"]},
            "form.tags",
            "标签：请从选项中选择 / Tags: must be one of the options",
        ),
        ({"tags": ["x", "x"]}, "form.tags", "标签：选项重复 / Tags: an option is chosen twice"),
        (
            {"on": "2026-02-30"},
            "form.on",
            "日期：日期格式应为 YYYY-MM-DD / Date: must be a date, YYYY-MM-DD",
        ),
        (
            {"on": "2026-3-1"},
            "form.on",
            "日期：日期格式应为 YYYY-MM-DD / Date: must be a date, YYYY-MM-DD",
        ),
        (
            {"at": "2026-03-01T09:30"},
            "form.at",
            "时间：时间须带时区 / Time: must carry a time zone offset",
        ),
        (
            {"at": "tomorrow"},
            "form.at",
            "时间：时间格式无效 / Time: must be a date and time (ISO 8601)",
        ),
        ({"note": "123456"}, "form.note", "说明：不能超过 5 字 / Note: longer than 5 characters"),
        ({"note": 5}, "form.note", "说明：请填写文字 / Note: must be text"),
        ({"who": 3}, "form.who", "交接人：请选择 / Deputy: must be chosen"),
        ({"patient_id": "7"}, "form.patient_id", "患者：请选择患者 / Patient: must be a patient"),
        (
            {"proof": ["not-a-digest"]},
            "form.proof",
            "证明：附件无效 / Proof: must be a list of uploaded files",
        ),
        ({"extra": 1}, "form.extra", "表单中没有字段“extra” / the form has no field 'extra'"),
    ],
)
def test_each_kind_of_bad_value(data: dict[str, Any], field: str, message: str) -> None:
    error = refused({"kind": "a", **data})
    assert error.field == field
    assert error.message == message


def test_an_empty_answer_does_not_make_another_field_required() -> None:
    form = Form.model_validate(
        {
            "fields": [
                {"key": "a", "label": {"zh": "甲"}, "type": "text"},
                {
                    "key": "b",
                    "label": {"zh": "乙"},
                    "type": "text",
                    "required_if": {"field": "a", "op": "exists"},
                },
            ]
        }
    )
    assert check_form(form, {"a": ""}) == {}  # "" is not an answer: b is not required
    with pytest.raises(DomainError) as caught:
        check_form(form, {"a": "x"})
    assert caught.value.field == "form.b"


def test_not_an_object() -> None:
    error = refused(["kind", "a"])
    assert error.field == "form"


def _definition(form: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "key": "t",
        "version": 1,
        "name": {"zh": "测试"},
        "stages": [{"id": "s", "name": {"zh": "审"}, "assignee": {"role": "medical_affairs"}}],
        "form": form,
        **extra,
    }


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({"fields": [{"key": "k", "label": {"zh": "K"}, "type": "choice"}]}, "needs options"),
        (
            {"fields": [{"key": "k", "label": {"zh": "K"}, "type": "text", "min": 1}]},
            "are for numbers",
        ),
        (
            {"fields": [{"key": "k", "label": {"zh": "K"}, "type": "number", "min": 2, "max": 1}]},
            "min is above max",
        ),
        ({"fields": [{"key": "p", "label": {"zh": "P"}, "type": "patient"}]}, "patient_id"),
        (
            {
                "fields": [
                    {"key": "a", "label": {"zh": "A"}, "type": "text"},
                    {"key": "a", "label": {"zh": "B"}, "type": "text"},
                ]
            },
            "keys repeat",
        ),
        (
            {
                "fields": [
                    {
                        "key": "a",
                        "label": {"zh": "A"},
                        "type": "text",
                        "required_if": {"field": "nope", "op": "exists"},
                    }
                ]
            },
            "unknown field 'nope'",
        ),
        ({"fields": [{"key": "a", "label": {"zh": "A"}, "type": "signature"}]}, "type"),
    ],
)
def test_a_bad_form_is_a_bad_definition(form: dict[str, Any], why: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_definition(_definition(form))
    assert caught.value.field == "definition"
    assert why in caught.value.message


def test_a_startable_definition_needs_a_form() -> None:
    body = _definition({"fields": [{"key": "a", "label": {"zh": "A"}, "type": "text"}]})
    assert parse_definition({**body, "startable": True}).body.startable is True
    del body["form"]
    with pytest.raises(DomainError) as caught:
        parse_definition({**body, "startable": True})
    assert "needs a form" in caught.value.message
