"""Process definitions with their forms, and an instance's form data as labelled entries."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from api.domain import approvals
from api.graphql.people.types import UserRef
from api.graphql.texts import LocalizedText


def _text(name: Any) -> LocalizedText | None:
    return LocalizedText(zh=name.zh, en=name.en or name.zh) if name is not None else None


@strawberry.type(description="One choice of a choice field.")
class FormOption:
    value: str
    label: LocalizedText


@strawberry.type(description="One field of a process's form.")
class FormField:
    key: str
    label: LocalizedText
    type: str = strawberry.field(
        description="text | number | date | datetime | choice | multi_choice | person | department | patient | attachment"
    )
    required: bool
    required_if: JSON | None = strawberry.field(
        description="A condition {field, op, value} / {all} / {any} / {not} over the other fields."
    )
    help: LocalizedText | None
    unit: LocalizedText | None
    min: float | None
    max: float | None
    integer: bool
    max_length: int | None
    multiline: bool
    options: list[FormOption] = strawberry.field(
        description="A choice field's options; a department field's are the departments (value: code)."
    )

    @classmethod
    def of(cls, f: approvals.FormField, departments: list[FormOption] | None = None) -> FormField:
        options = [
            FormOption(
                value=o.value, label=LocalizedText(zh=o.label.zh, en=o.label.en or o.label.zh)
            )
            for o in f.options or []
        ]
        if f.type == "department":
            options = departments or []
        return cls(
            key=f.key,
            label=LocalizedText(zh=f.label.zh, en=f.label.en or f.label.zh),
            type=f.type,
            required=bool(f.required),
            required_if=(
                f.required_if.model_dump(mode="json", by_alias=True, exclude_none=True)
                if f.required_if is not None
                else None
            ),
            help=_text(f.help),
            unit=_text(f.unit),
            min=f.min,
            max=f.max,
            integer=bool(f.integer),
            max_length=f.max_length,
            multiline=bool(f.multiline),
            options=options,
        )


@strawberry.type(description="A process's form, as of one definition version.")
class ProcessForm:
    fields: list[FormField]

    @classmethod
    def of(
        cls, form: approvals.Form | None, departments: list[FormOption] | None = None
    ) -> ProcessForm | None:
        if form is None:
            return None
        return cls(fields=[FormField.of(f, departments) for f in form.fields])


@strawberry.type(description="The newest published version of a process.")
class ProcessDefinition:
    key: str
    name: str = strawberry.field(description="The name in Chinese.")
    names: LocalizedText
    description: LocalizedText
    version: int
    startable: bool = strawberry.field(
        description="Whether `startProcess` starts it; false: it is submitted from its own screen."
    )
    form: ProcessForm | None

    @classmethod
    def of(
        cls, published: approvals.Published, departments: list[FormOption] | None = None
    ) -> ProcessDefinition:
        body = published.definition.body
        return cls(
            key=body.key,
            name=body.name.zh,
            names=LocalizedText(zh=body.name.zh, en=body.name.en or body.name.zh),
            description=LocalizedText.of(body.description),
            version=published.row.version,
            startable=published.startable,
            form=ProcessForm.of(body.form, departments),
        )


def department_options(rows: list[Any]) -> list[FormOption]:
    return [
        FormOption(value=d.code, label=LocalizedText(zh=d.name, en=d.name_en or d.name))
        for d in rows
    ]


@strawberry.type(description="One filled-in field of an application, with its label.")
class FormEntry:
    key: str
    label: LocalizedText
    type: str
    value: JSON
    text: LocalizedText = strawberry.field(description="The value as a person reads it.")


async def form_entries(
    session: AsyncSession, form: approvals.Form, data: dict[str, Any], tz: ZoneInfo
) -> list[FormEntry]:
    return [
        FormEntry(
            key=a.key,
            label=LocalizedText(zh=a.label_zh, en=a.label_en),
            type=a.type,
            value=a.value,
            text=LocalizedText(zh=a.text_zh, en=a.text_en),
        )
        for a in await approvals.describe_answers(session, form, data, tz)
    ]


@strawberry.type(description="A step a trial run reaches, with the people it would go to.")
class TrialStep:
    id: str
    name: LocalizedText
    mode: str
    stage: int
    branch: str | None
    assignees: list[UserRef] = strawberry.field(
        description="Empty: the step names nobody for this applicant (it would stop as NO_ASSIGNEE)."
    )


@strawberry.type(description="What a definition would do with sample answers; nothing is written.")
class ProcessTrial:
    key: str
    version: int
    form: JSON = strawberry.field(description="The answers as they would be stored.")
    deadline_hours: float | None
    critical: bool
    steps: list[TrialStep]

    @classmethod
    def of(cls, trial: approvals.Trial) -> ProcessTrial:
        return cls(
            key=trial.definition.key,
            version=trial.definition.version,
            form=trial.form,
            deadline_hours=trial.deadline_hours,
            critical=trial.critical,
            steps=[
                TrialStep(
                    id=s.step.id,
                    name=LocalizedText(zh=s.step.name.zh, en=s.step.name.en or s.step.name.zh),
                    mode=s.step.mode,
                    stage=s.stage_index,
                    branch=s.branch,
                    assignees=[UserRef.from_row(u) for u in s.assignees],
                )
                for s in trial.steps
            ],
        )
