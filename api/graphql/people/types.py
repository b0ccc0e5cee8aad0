from __future__ import annotations

import strawberry

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
        return cls(id=strawberry.ID(str(row.id)), code=row.code, name=row.name, name_en=row.name_en)


@strawberry.type
class UserRef:
    """Another person, as shown beside a task or an event."""

    id: strawberry.ID
    username: str
    display_name: str

    @classmethod
    def from_row(cls, row: UserRow) -> UserRef:
        return cls(id=strawberry.ID(str(row.id)), username=row.username, display_name=row.display_name)


@strawberry.type
class Me:
    id: strawberry.ID
    username: str
    display_name: str
    roles: list[str]
    department: Department | None


@strawberry.type
class LoginResult:
    token: str
    user: UserRef
