from __future__ import annotations

import strawberry

from api.graphql.rows import from_row
from api.models.people import Department as DepartmentRow
from api.models.people import User as UserRow


@strawberry.type
class Department:
    id: strawberry.ID
    code: str
    name: str
    name_en: str

    @classmethod
    def from_row(cls, row: DepartmentRow) -> Department:
        return from_row(cls, row)


@strawberry.type
class UserRef:
    """Another person, as shown beside a task or an event."""

    id: strawberry.ID
    username: str
    display_name: str

    @classmethod
    def from_row(cls, row: UserRow) -> UserRef:
        return from_row(cls, row)


@strawberry.type(description="A member of staff, as offered by a person picker.")
class StaffMember:
    id: strawberry.ID
    username: str
    display_name: str
    department: Department | None

    @classmethod
    def from_row(cls, row: UserRow, department: DepartmentRow | None) -> StaffMember:
        return cls(
            id=strawberry.ID(str(row.id)),
            username=row.username,
            display_name=row.display_name,
            department=Department.from_row(department) if department else None,
        )


@strawberry.type
class Me:
    id: strawberry.ID
    username: str
    display_name: str
    roles: list[str]
    department: Department | None
    must_change_password: bool = strawberry.field(
        default=False,
        description="An initial password from an import: the client asks for a new one first.",
    )


@strawberry.type
class LoginResult:
    token: str
    user: UserRef
