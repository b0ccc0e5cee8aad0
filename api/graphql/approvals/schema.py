"""Approvals over GraphQL: thin resolvers over `api.domain.approvals`."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from api.domain import approvals
from api.domain.people import user_by_username
from api.errors import invalid
from api.graphql.approvals.forms import ProcessDefinition, ProcessTrial, department_options
from api.graphql.approvals.types import (
    ApprovalDefinitionInfo,
    ApprovalInstance,
    ApprovalTask,
    Decision,
)
from api.graphql.context import Info
from api.graphql.permissions import HasRole, IsAuthenticated, IsStaff
from api.graphql.scalars import parse_id
from api.models.approvals import ApprovalInstance as InstanceRow
from api.models.approvals import InstanceStatus
from api.models.people import Role

MAX_CC = 20


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="My approval tasks, most urgent first."
    )
    async def my_tasks(self, info: Info, pending_only: bool = True) -> list[ApprovalTask]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await approvals.my_tasks(session, actor, pending_only=pending_only)
        return [ApprovalTask.from_row(r) for r in rows]

    @strawberry.field(permission_classes=[IsAuthenticated], description="Approvals I applied for.")
    async def my_applications(self, info: Info, kind: str | None = None) -> list[ApprovalInstance]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await approvals.my_applications(session, actor, kind=kind)
        return [ApprovalInstance.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="One task, decided or not, if I may see its approval (an old link still opens).",
    )
    async def approval_task(self, info: Info, id: strawberry.ID) -> ApprovalTask:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            row = await approvals.access_task(session, actor, parse_id(id))
        return ApprovalTask.from_row(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated], description="One approval, if I may see it."
    )
    async def approval_instance(self, info: Info, id: strawberry.ID) -> ApprovalInstance:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            row = await approvals.access_instance(session, actor, parse_id(id))
        return ApprovalInstance.from_row(row)

    @strawberry.field(
        permission_classes=[IsStaff],
        description="Every published process's newest version with its form (发起审批).",
    )
    async def process_definitions(
        self, info: Info, startable_only: bool = False
    ) -> list[ProcessDefinition]:
        info.context.require_actor()
        async with info.context.read() as session:
            found = await approvals.published_processes(session, startable_only=startable_only)
        return [ProcessDefinition.of(p) for p in found]

    @strawberry.field(
        permission_classes=[IsStaff],
        description="One process's newest version with its form (what `startProcess` checks).",
    )
    async def process_definition(self, info: Info, key: str) -> ProcessDefinition:
        info.context.require_actor()
        async with info.context.read() as session:
            found = await approvals.published_process(session, key)
            departments = department_options(await approvals.department_choices(session))
        return ProcessDefinition.of(found, departments)

    @strawberry.field(
        permission_classes=[HasRole(Role.MEDICAL_AFFAIRS)],
        description="Test-run a process definition (YAML or JSON) against sample answers; writes nothing.",
    )
    async def trial_process_definition(
        self, info: Info, definition: str, form: JSON, applicant_username: str | None = None
    ) -> ProcessTrial:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            applicant = await user_by_username(session, applicant_username or actor.username)
            trial = await approvals.trial_run(
                session, approvals.load_source(definition), form, applicant=applicant, actor=actor
            )
        return ProcessTrial.of(trial)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[HasRole(Role.MEDICAL_AFFAIRS)],
        description="Publish a version of a process started with a form (医务处). Running instances keep theirs.",
    )
    async def publish_process_definition(self, info: Info, definition: str) -> ProcessDefinition:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await approvals.publish_process_definition(
                session, approvals.load_source(definition), actor=actor
            )
            departments = department_options(await approvals.department_choices(session))
        return ProcessDefinition.of(
            approvals.Published(row, approvals.parse_stored(row)), departments
        )

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="发起审批: start a process with its form; I am the applicant.",
    )
    async def start_process(
        self,
        info: Info,
        definition_key: str,
        form: JSON,
        idempotency_key: str | None = None,
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await approvals.start_process(
                session,
                definition_key=definition_key,
                form=form,
                actor=actor,
                idempotency_key=idempotency_key,
            )
        return ApprovalInstance.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Approve, reject or return (退回) one of my tasks.",
    )
    async def decide_task(
        self,
        info: Info,
        task_id: strawberry.ID,
        decision: Decision,
        comment: str | None = None,
        idempotency_key: str | None = None,
        return_to: str | None = None,
    ) -> ApprovalTask:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            task = await approvals.access_task_for_decision(
                session, actor, parse_id(task_id, "taskId")
            )
            task = await approvals.decide_task(
                session,
                task,
                actor=actor,
                decision=decision.value,
                comment=comment,
                return_to=return_to,
                idempotency_key=idempotency_key,
            )
            instance = await session.get(InstanceRow, task.instance_id)
        if (
            instance is not None
            and instance.status == InstanceStatus.BLOCKED
            and task.status == "approved"
        ):
            # Recorded and committed; the flow stopped on a policy guard, say why.
            raise approvals.closed_error(instance)
        return ApprovalTask.from_row(task)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="撤销: take my application back."
    )
    async def withdraw_application(
        self, info: Info, id: strawberry.ID, comment: str | None = None
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance = await approvals.access_instance(session, actor, parse_id(id))
            instance = await approvals.withdraw_instance(
                session, instance, actor=actor, comment=comment
            )
        return ApprovalInstance.from_row(instance)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Resubmit my returned application."
    )
    async def resubmit_application(
        self, info: Info, id: strawberry.ID, comment: str | None = None
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance = await approvals.access_instance(session, actor, parse_id(id))
            instance = await approvals.resubmit_instance(
                session, instance, actor=actor, comment=comment
            )
        return ApprovalInstance.from_row(instance)

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="转交: hand my task to someone else (same deadline).",
    )
    async def transfer_task(
        self, info: Info, task_id: strawberry.ID, to_username: str, comment: str | None = None
    ) -> ApprovalTask:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            task = await approvals.access_task_for_decision(
                session, actor, parse_id(task_id, "taskId")
            )
            to = await user_by_username(session, to_username)
            new = await approvals.transfer_task(session, task, actor=actor, to=to, comment=comment)
        return ApprovalTask.from_row(new)

    @strawberry.mutation(
        permission_classes=[IsStaff], description="加签: someone else must approve this step too."
    )
    async def add_signer(
        self, info: Info, task_id: strawberry.ID, username: str, comment: str | None = None
    ) -> ApprovalTask:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            task = await approvals.access_task_for_decision(
                session, actor, parse_id(task_id, "taskId")
            )
            user = await user_by_username(session, username)
            new = await approvals.add_signer(session, task, actor=actor, user=user, comment=comment)
        return ApprovalTask.from_row(new)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="抄送: let others read an approval."
    )
    async def carbon_copy(
        self, info: Info, instance_id: strawberry.ID, usernames: list[str]
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        if len(usernames) > MAX_CC:
            raise invalid("usernames", f"一次最多抄送 {MAX_CC} 人 / at most {MAX_CC} users at once")
        async with info.context.transaction() as session:
            instance = await approvals.access_instance(
                session, actor, parse_id(instance_id, "instanceId")
            )
            users = [await user_by_username(session, u) for u in dict.fromkeys(usernames)]
            await approvals.carbon_copy(session, instance, actor=actor, users=users)
        return ApprovalInstance.from_row(instance)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="催办: remind the assignee of a pending task.",
    )
    async def urge_task(self, info: Info, task_id: strawberry.ID) -> ApprovalTask:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance_task = await approvals.access_task_for_urging(
                session, actor, parse_id(task_id, "taskId")
            )
            task = await approvals.urge_task(session, instance_task, actor=actor)
        return ApprovalTask.from_row(task)

    @strawberry.mutation(
        permission_classes=[HasRole(Role.ADMIN)],
        description="Publish a process definition version (YAML or JSON). Running instances keep theirs.",
    )
    async def publish_approval_definition(
        self, info: Info, definition: str
    ) -> ApprovalDefinitionInfo:
        info.context.require_actor()
        async with info.context.transaction() as session:
            row = await approvals.publish_definition(session, approvals.load_source(definition))
        parsed = approvals.parse_stored(row)
        return ApprovalDefinitionInfo(
            id=strawberry.ID(str(row.id)),
            key=row.key,
            version=row.version,
            name=parsed.body.name.zh,
            published_at=row.published_at,
        )
