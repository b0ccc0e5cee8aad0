"""Staff (人员): accounts with their department, roles, staff number, mobile, superior,
initial password and DingTalk / WeCom user ids.

An initial password is set only when the account is created and must be changed at the
first sign-in; without one the person signs in through DingTalk or WeCom only. Rows
that share an initial password share one argon2 hash computation (argon2 is slow on
purpose, and 2,000 hashes would take minutes). A re-import never resets a password.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from api.domain import people, security
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, FieldError, boolean, text, words
from api.errors import DomainError
from api.models.people import Department, ExternalIdentity, Role, User

TITLE = "人员 staff"
ROLE_NAMES = {
    "管理员": Role.ADMIN,
    "系统管理员": Role.ADMIN,
    "外科医生": Role.SURGEON,
    "手术医生": Role.SURGEON,
    "医生": Role.SURGEON,
    "科主任": Role.DEPT_HEAD,
    "医务处": Role.MEDICAL_AFFAIRS,
    "分管副院长": Role.VICE_PRESIDENT,
    "副院长": Role.VICE_PRESIDENT,
    "党支部": Role.PARTY_BRANCH,
    "党支部书记": Role.PARTY_BRANCH,
    "授权委员会": Role.COMMITTEE,
    "委员会": Role.COMMITTEE,
    "治疗师": Role.THERAPIST,
    "护士": Role.NURSE,
    "质控": Role.QUALITY,
    "职能科室": Role.QUALITY,
}
STAFF_ROLES = {str(r) for r in Role} - {str(Role.PATIENT)}
COLUMNS = [
    Column("username", "用户名", "username", True, "dr.zhang", "登录名，唯一 / sign-in name"),
    Column("display_name", "姓名", "name", True, "张伟"),
    Column(
        "department",
        "科室编码",
        "department code",
        False,
        "GS",
        "先导入科室 / import departments first",
    ),
    Column(
        "roles",
        "角色",
        "roles",
        True,
        "外科医生",
        "多个用逗号分隔 / comma separated: "
        + "、".join(ROLE_NAMES)
        + " 或代码 or codes: "
        + ", ".join(sorted(STAFF_ROLES)),
    ),
    Column("job_number", "工号", "job number", False, "10023"),
    Column("mobile", "手机号", "mobile", False, "13800000000"),
    Column(
        "head",
        "科主任",
        "department head",
        False,
        "否",
        "是: 设为该科室负责人 / yes: head of the department",
    ),
    Column(
        "superior",
        "上级用户名",
        "superior",
        False,
        "",
        "可填本文件中后面的人员 / may name someone further down",
    ),
    Column(
        "initial_password",
        "初始密码",
        "initial password",
        False,
        "Bedside@2026",
        "首次登录须修改；留空则仅能通过钉钉/企业微信登录 / changed at first sign-in; empty: DingTalk/WeCom sign-in only",
    ),
    Column("dingtalk_id", "钉钉用户ID", "DingTalk userid", False, ""),
    Column("wecom_id", "企业微信用户ID", "WeCom userid", False, ""),
    Column("active", "在职", "active", False, "是", "否: 停用账号 / no: deactivate the account"),
]
KEY_COLUMN = "username"
FIELDS = {
    "username": "username",
    "displayName": "display_name",
    "roles": "roles",
    "jobNumber": "job_number",
    "newPassword": "initial_password",
    "externalId": "dingtalk_id",
    "head": "head",
    "superior": "superior",
}

MOBILE = re.compile(r"(?:\+?86)?(1\d{10})")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,79}")
PROVIDERS = (("dingtalk_id", "dingtalk", "钉钉"), ("wecom_id", "wecom", "企业微信"))


def parse(values: dict[str, Any]) -> dict[str, Any]:
    username = text(values.get("username"), "username", required=True, max_length=80)
    if not USERNAME.fullmatch(username):
        raise FieldError(
            "username",
            f"用户名只能用字母、数字和 . _ @ - / letters, digits and . _ @ -: {username}",
        )
    roles = []
    for word in words(values.get("roles")):
        role = str(ROLE_NAMES.get(word, word.lower()))
        if role not in STAFF_ROLES:
            raise FieldError("roles", f"未知角色 / unknown role: {word}")
        roles.append(role)
    if not roles:
        raise FieldError("roles", "必填 / required")
    mobile = text(values.get("mobile"), "mobile", max_length=20).replace(" ", "").replace("-", "")
    if mobile:
        match = MOBILE.fullmatch(mobile)
        if not match:
            raise FieldError("mobile", f"手机号应为11位 / an 11-digit mobile number: {mobile}")
        mobile = match[1]
    return {
        "username": username,
        "display_name": text(
            values.get("display_name"), "display_name", required=True, max_length=100
        ),
        "department": text(values.get("department"), "department", max_length=40),
        "roles": list(dict.fromkeys(roles)),
        "job_number": text(values.get("job_number"), "job_number", max_length=40) or None,
        "mobile": mobile or None,
        "head": boolean(values.get("head"), "head", default=False)
        if text(values.get("head"), "head")
        else None,
        "superior": text(values.get("superior"), "superior", max_length=80),
        "initial_password": text(
            values.get("initial_password"), "initial_password", max_length=256
        ),
        "dingtalk_id": text(values.get("dingtalk_id"), "dingtalk_id", max_length=128),
        "wecom_id": text(values.get("wecom_id"), "wecom_id", max_length=128),
        "active": boolean(values.get("active"), "active", default=True),
    }


def key(record: dict[str, Any]) -> str:
    return str(record["username"]).lower()


async def prepare(ctx: ImportContext) -> None:
    session = ctx.session
    users = list((await session.execute(sa.select(User))).scalars())
    ctx.cache["users"] = {u.username: u for u in users}
    ctx.cache["job_numbers"] = {u.job_number: u.username for u in users if u.job_number}
    ctx.cache["departments"] = {
        d.code: d for d in (await session.execute(sa.select(Department))).scalars()
    }
    identities = list((await session.execute(sa.select(ExternalIdentity))).scalars())
    by_id = {u.id: u.username for u in users}
    # Who holds each platform id, and each user's id per platform, by username (a new
    # account has no id yet).
    ctx.cache["identities"] = {(i.provider, i.external_id): by_id[i.user_id] for i in identities}
    ctx.cache["bound"] = {(by_id[i.user_id], i.provider): i.external_id for i in identities}
    ctx.cache["hashes"] = {}
    ctx.cache["new"] = []  # (row, NewUser, record) created together in `finish`
    ctx.cache["planned"] = set()  # usernames of the new accounts


def _password_hash(ctx: ImportContext, password: str, username: str) -> str:
    try:
        security.check_password_policy(ctx.settings, password, username=username)
    except DomainError as exc:
        raise FieldError("initial_password", exc.message) from None
    hashes: dict[str, str] = ctx.cache["hashes"]
    if password not in hashes:
        assert ctx.hashing is not None
        hashes[password] = ctx.hashing.hash(password)
    return hashes[password]


def _check_unique(ctx: ImportContext, record: dict[str, Any]) -> None:
    """What the file asks against what the database and earlier rows hold."""
    username = record["username"]
    if record["job_number"]:
        holder = ctx.cache["job_numbers"].get(record["job_number"])
        if holder is not None and holder != username:
            raise FieldError("job_number", f"工号已被 {holder} 使用 / job number used by {holder}")
    for column, provider, label in PROVIDERS:
        external_id = record[column]
        if not external_id:
            continue
        owner = ctx.cache["identities"].get((provider, external_id))
        if owner is not None and owner != username:
            raise FieldError(column, f"该{label}账号已绑定 {owner} / already bound to {owner}")
        current = ctx.cache["bound"].get((username, provider))
        if current is not None and current != external_id:
            raise FieldError(
                column,
                f"该用户已绑定{label}账号 {current} / already bound to {provider} id {current}",
            )


def _claim(ctx: ImportContext, record: dict[str, Any]) -> None:
    username = record["username"]
    if record["job_number"]:
        ctx.cache["job_numbers"][record["job_number"]] = username
    for column, provider, _ in PROVIDERS:
        if record[column]:
            ctx.cache["identities"][(provider, record[column])] = username


async def apply(ctx: ImportContext, record: dict[str, Any]) -> Outcome:
    users = ctx.cache["users"]
    what = f"{record['username']} {record['display_name']}"
    dept = None
    if record["department"]:
        dept = ctx.cache["departments"].get(record["department"])
        if dept is None:
            raise FieldError(
                "department",
                f"科室不存在，请先导入科室 / no such department: {record['department']}",
            )
    if record["head"] and dept is None:
        raise FieldError("head", "科主任须填写科室 / a head needs a department")
    _check_unique(ctx, record)
    user: User | None = users.get(record["username"])
    if user is None:
        password_hash = None
        if record["initial_password"]:
            password_hash = _password_hash(ctx, record["initial_password"], record["username"])
        spec = people.NewUser(
            username=record["username"],
            display_name=record["display_name"],
            roles=record["roles"],
            department_id=dept.id if dept else None,
            mobile=record["mobile"],
            job_number=record["job_number"],
            password_hash=password_hash,
            superior=record["superior"] or None,
        )
        ctx.cache["new"].append((ctx.cache["row"], spec, record))
        ctx.cache["planned"].add(record["username"])
        _claim(ctx, record)
        return Outcome(CREATE, what)

    _claim(ctx, record)
    changes: list[str] = []
    superior_id = user.superior_id
    if record["superior"]:
        superior = users.get(record["superior"])
        if superior is not None:
            superior_id = superior.id
        else:  # a new account further down: set once it exists
            ctx.cache.setdefault("late_superiors", []).append((ctx.cache["row"], user, record))
    changes += await _update(ctx, user, record, dept, superior_id)
    bindings = [
        (user, provider, record[column])
        for column, provider, _ in PROVIDERS
        if record[column] and ctx.cache["bound"].get((user.username, provider)) is None
    ]
    if bindings:
        await people.bind_external_identities(ctx.session, bindings)
        changes += [provider for _, provider, _ in bindings]
    changes += await _head(ctx, user, record, dept)
    return Outcome(UPDATE if changes else UNCHANGED, what, changes)


async def finish(ctx: ImportContext, *, write: bool) -> list[tuple[int, str | None, str]]:
    """Create the new accounts together, bind their platform ids, set the heads and the
    superiors that named them; returns (row, column, reason) for anything refused. With
    `write` false (other rows failed already) only checks."""
    new = ctx.cache["new"]
    errors: list[tuple[int, str | None, str]] = []
    known = set(ctx.cache["users"]) | ctx.cache["planned"]
    for row, spec, _ in new:
        if spec.superior and spec.superior not in known:
            errors.append((row, "superior", f"上级用户不存在 / no such user: {spec.superior}"))
        elif spec.superior == spec.username:
            errors.append((row, "superior", "上级不能是本人 / a user cannot be their own superior"))
    for row, _, record in ctx.cache.get("late_superiors", []):
        if record["superior"] not in known:
            errors.append((row, "superior", f"上级用户不存在 / no such user: {record['superior']}"))
    if errors or not write:
        return errors
    created = await people.create_users(ctx.session, [spec for _, spec, _ in new], actor=ctx.actor)
    for user in created:
        ctx.cache["users"][user.username] = user
    await people.bind_external_identities(
        ctx.session,
        [
            (user, provider, record[column])
            for user, (_, _, record) in zip(created, new, strict=True)
            for column, provider, _ in PROVIDERS
            if record[column]
        ],
    )
    departments = {d.id: d for d in ctx.cache["departments"].values()}
    for user, (row, _, record) in zip(created, new, strict=True):
        try:
            await _head(ctx, user, record, departments.get(user.department_id))
            if not record["active"]:
                await _update(
                    ctx, user, record, departments.get(user.department_id), user.superior_id
                )
        except FieldError as exc:
            errors.append((row, exc.column, exc.message))
    for _, user, record in ctx.cache.get("late_superiors", []):
        superior = ctx.cache["users"][record["superior"]]
        await _update(ctx, user, record, departments.get(user.department_id), superior.id)
    return errors


async def _head(ctx: ImportContext, user: User, record: dict[str, Any], dept: Any) -> list[str]:
    if record["head"] is None or dept is None:
        return []
    if not record["head"] and dept.head_user_id != user.id:
        return []
    try:
        changed = await people.set_department_head(
            ctx.session, dept, user if record["head"] else None, actor=ctx.actor
        )
    except DomainError as exc:
        raise FieldError("head", exc.message) from None
    return ["head"] if changed else []


async def _update(
    ctx: ImportContext, user: User, record: dict[str, Any], dept: Any, superior_id: int | None
) -> list[str]:
    try:
        changed = await people.update_user(
            ctx.session,
            user,
            display_name=record["display_name"],
            department_id=dept.id if dept else None,
            roles=record["roles"],
            mobile=record["mobile"],
            job_number=record["job_number"],
            superior_id=superior_id,
            is_active=record["active"],
            actor=ctx.actor,
        )
    except DomainError as exc:
        raise FieldError(FIELDS.get(exc.field or "", exc.field), exc.message) from None
    return sorted(changed)
