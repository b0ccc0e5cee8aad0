"""The administrator's screens: users and roles, department heads, unlock and password
reset, imports from an uploaded file (checked first, then confirmed), and the hash
chains' verification."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain import admin, people
from api.domain.imports import ImportReport
from api.errors import DomainError, ErrorCode, invalid, not_found
from api.graphql.context import Info
from api.graphql.people.types import Department, UserRef
from api.graphql.permissions import HasRole
from api.graphql.scalars import parse_id
from api.models.base import utcnow
from api.models.people import Department as DepartmentRow
from api.models.people import Role
from api.models.people import User as UserRow

AdminOnly = HasRole(Role.ADMIN)


@strawberry.type(description="An account as the administrator manages it.")
class AdminUser:
    id: strawberry.ID
    username: str
    display_name: str
    roles: list[str]
    department: Department | None
    job_number: str | None
    mobile: str | None
    is_active: bool
    locked_until: datetime | None = strawberry.field(description="Set while a lockout lasts.")
    must_change_password: bool

    @classmethod
    def from_row(cls, row: UserRow, department: DepartmentRow | None) -> AdminUser:
        now = utcnow()
        locked = row.locked_until if row.locked_until and row.locked_until > now else None
        return cls(
            id=strawberry.ID(str(row.id)),
            username=row.username,
            display_name=row.display_name,
            roles=list(row.roles or []),
            department=Department.from_row(department) if department else None,
            job_number=row.job_number,
            mobile=row.mobile,
            is_active=row.is_active,
            locked_until=locked,
            must_change_password=row.password_must_change,
        )


@strawberry.type
class AdminDepartment:
    id: strawberry.ID
    code: str
    name: str
    name_en: str
    head: UserRef | None


@strawberry.type
class PasswordReset:
    user: AdminUser
    one_time_password: str = strawberry.field(
        description="Shown once, to hand over in person; it must be changed at sign-in."
    )


@strawberry.type
class ImportRowResult:
    row: int
    action: str = strawberry.field(description="create | update | unchanged")
    what: str
    changes: list[str]


@strawberry.type
class ImportRowError:
    row: int | None = strawberry.field(description="None: the file as a whole")
    column: str | None = strawberry.field(description="The column's Chinese header")
    column_en: str | None
    message: str


@strawberry.type
class ImportResult:
    kind: str
    applied: bool = strawberry.field(description="Written (confirmed and no row failed).")
    created: int
    updated: int
    unchanged: int
    rows: list[ImportRowResult]
    errors: list[ImportRowError]

    @classmethod
    def from_report(cls, report: ImportReport, applied: bool) -> ImportResult:
        return cls(
            kind=report.kind,
            applied=applied,
            created=report.count("create"),
            updated=report.count("update"),
            unchanged=report.count("unchanged"),
            rows=[
                ImportRowResult(
                    row=r.row,
                    action=r.action,
                    what=r.what,
                    changes=[str(c) for c in (r.changes or [])],
                )
                for r in report.rows
            ],
            errors=[
                ImportRowError(
                    row=e.row,
                    column=e.column.zh if e.column else None,
                    column_en=e.column.en if e.column else None,
                    message=e.message,
                )
                for e in report.errors
            ],
        )


@strawberry.type
class ChainProblem:
    stream: str
    seq: int | None
    reason: str


@strawberry.type(description="`bedside audit verify`, run now.")
class AuditVerification:
    checked_at: datetime
    intact: bool
    problems: list[ChainProblem]


async def _admin_user(session, row: UserRow) -> AdminUser:  # type: ignore[no-untyped-def]
    dept = await session.get(DepartmentRow, row.department_id) if row.department_id else None
    return AdminUser.from_row(row, dept)


async def _import(info: Info, kind: str, filename: str, content_base64: str, *, confirm: bool):  # type: ignore[no-untyped-def]
    actor = info.context.require_actor()
    admin.require_admin(actor)
    data = admin.decode_upload(filename, content_base64)
    services = info.context.services
    async with info.context.read() as session:
        try:
            report = await admin.import_upload(
                session,
                kind,
                filename,
                data,
                actor=actor,
                settings=services.settings,
                hashing=services.hashing,
            )
        except BaseException:
            await session.rollback()
            raise
        applied = confirm and report.ok
        if applied:
            await session.commit()
        else:
            await session.rollback()
    return ImportResult.from_report(report, applied)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[AdminOnly],
        description="用户与角色 / every account, by username; search by name, username, job number",
    )
    async def admin_users(self, info: Info, search: str | None = None) -> list[AdminUser]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await admin.list_users(session, actor, search=search)
            departments = {d.id: d for d in await admin.list_departments(session, actor)}
        return [AdminUser.from_row(r, departments.get(r.department_id or 0)) for r in rows]

    @strawberry.field(
        permission_classes=[AdminOnly], description="科室与科主任 / departments and their heads"
    )
    async def admin_departments(self, info: Info) -> list[AdminDepartment]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await admin.list_departments(session, actor)
            heads = {
                r.head_user_id: await session.get(UserRow, r.head_user_id)
                for r in rows
                if r.head_user_id
            }
        return [
            AdminDepartment(
                id=strawberry.ID(str(r.id)),
                code=r.code,
                name=r.name,
                name_en=r.name_en,
                head=UserRef.from_row(h) if (h := heads.get(r.head_user_id)) else None,
            )
            for r in rows
        ]

    @strawberry.field(
        permission_classes=[AdminOnly],
        description="审计链校验 / check every hash chain now (bedside audit verify)",
    )
    async def audit_verification(self, info: Info) -> AuditVerification:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            result = await admin.verify_audit(session, actor)
        return AuditVerification(
            checked_at=result.at,
            intact=result.intact,
            problems=[
                ChainProblem(stream=b.stream, seq=b.seq, reason=b.reason) for b in result.breaks
            ],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[AdminOnly],
        description="修改姓名、科室、角色 / edit name, department, roles",
    )
    async def update_user(
        self,
        info: Info,
        user_id: strawberry.ID,
        display_name: str,
        roles: list[str],
        department_id: strawberry.ID | None = None,
    ) -> AdminUser:
        actor = info.context.require_actor()
        admin.require_admin(actor)
        async with info.context.transaction() as session:
            user = await people.get_user(session, parse_id(user_id, "userId"))
            dept_id = parse_id(department_id, "departmentId") if department_id else None
            if dept_id is not None and await session.get(DepartmentRow, dept_id) is None:
                raise DomainError(
                    ErrorCode.NOT_FOUND, "科室不存在 / no such department", "departmentId"
                )
            if not display_name.strip():
                raise invalid("displayName", "请填写姓名 / name required")
            await people.update_user(
                session,
                user,
                display_name=display_name,
                department_id=dept_id,
                roles=roles,
                actor=actor,
                mobile=user.mobile,
                job_number=user.job_number,
                superior_id=user.superior_id,
                is_active=user.is_active,
            )
            return await _admin_user(session, user)

    @strawberry.mutation(
        permission_classes=[AdminOnly],
        description="停用账户 / deactivate: no more sign-in, every token revoked",
    )
    async def deactivate_user(self, info: Info, user_id: strawberry.ID, reason: str) -> AdminUser:
        actor = info.context.require_actor()
        admin.require_admin(actor)
        if not reason.strip():
            raise invalid("reason", "请填写停用原因 / give a reason")
        async with info.context.transaction() as session:
            user = await people.get_user(session, parse_id(user_id, "userId"))
            if user.id == actor.user_id:
                raise invalid("userId", "不能停用自己的账户 / you cannot deactivate yourself")
            await people.deactivate_user(session, user, actor=actor, reason=reason.strip()[:200])
            return await _admin_user(session, user)

    @strawberry.mutation(permission_classes=[AdminOnly], description="解除锁定 / end a lockout now")
    async def unlock_user(self, info: Info, user_id: strawberry.ID) -> AdminUser:
        actor = info.context.require_actor()
        admin.require_admin(actor)
        async with info.context.transaction() as session:
            user = await people.get_user(session, parse_id(user_id, "userId"))
            await people.unlock_user(session, user, actor=actor)
            return await _admin_user(session, user)

    @strawberry.mutation(
        permission_classes=[AdminOnly],
        description="重置密码 / a one-time password that must be changed at the next sign-in",
    )
    async def reset_password(self, info: Info, user_id: strawberry.ID) -> PasswordReset:
        actor = info.context.require_actor()
        admin.require_admin(actor)
        services = info.context.services
        async with info.context.transaction() as session:
            user = await people.get_user(session, parse_id(user_id, "userId"))
            password = await admin.reset_password(
                session, services.settings, services.hashing, user, actor=actor
            )
            return PasswordReset(user=await _admin_user(session, user), one_time_password=password)

    @strawberry.mutation(
        permission_classes=[AdminOnly], description="设置科主任 / set a department's head"
    )
    async def set_department_head(
        self, info: Info, department_id: strawberry.ID, user_id: strawberry.ID | None = None
    ) -> AdminDepartment:
        actor = info.context.require_actor()
        admin.require_admin(actor)
        async with info.context.transaction() as session:
            dept = await session.get(DepartmentRow, parse_id(department_id, "departmentId"))
            if dept is None:
                raise not_found("科室", "department")
            head = await people.get_user(session, parse_id(user_id, "userId")) if user_id else None
            await people.set_department_head(session, dept, head, actor=actor)
            return AdminDepartment(
                id=strawberry.ID(str(dept.id)),
                code=dept.code,
                name=dept.name,
                name_en=dept.name_en,
                head=UserRef.from_row(head) if head else None,
            )

    @strawberry.mutation(
        permission_classes=[AdminOnly],
        description="导入预检 / check an uploaded .xlsx or .csv (base64, at most 1 MB): "
        "what each row would do and every error by row and column; nothing is written",
    )
    async def preview_import(
        self, info: Info, kind: str, filename: str, content_base64: str
    ) -> ImportResult:
        return await _import(info, kind, filename, content_base64, confirm=False)

    @strawberry.mutation(
        permission_classes=[AdminOnly],
        description="确认导入 / import the file: written only when no row fails",
    )
    async def confirm_import(
        self, info: Info, kind: str, filename: str, content_base64: str
    ) -> ImportResult:
        return await _import(info, kind, filename, content_base64, confirm=True)
