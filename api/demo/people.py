"""Demo departments, staff and patients (all passwords `bedside-demo`)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import bind_external_identity
from api.models.patients import Patient
from api.models.people import Department, Role, User
from api.services import Services

ORDER = 0
DEMO_PASSWORD = "bedside-demo"

DEPARTMENTS = [
    ("GS", "普外科", "General Surgery"),
    ("REHAB", "康复医学科", "Rehabilitation"),
    ("MA", "医务处", "Medical Affairs"),
]

# username, name, department, roles, superior
USERS = [
    ("admin", "系统管理员", "MA", [Role.ADMIN], None),
    ("vp.chen", "陈副院长", "MA", [Role.VICE_PRESIDENT, Role.COMMITTEE], None),
    ("ma.zhao", "赵科长", "MA", [Role.MEDICAL_AFFAIRS, Role.QUALITY], "vp.chen"),
    ("chief.wang", "王主任", "GS", [Role.DEPT_HEAD, Role.SURGEON], "ma.zhao"),
    ("party.liu", "刘书记", "GS", [Role.PARTY_BRANCH], "ma.zhao"),
    ("dr.li", "李医生", "GS", [Role.SURGEON], "chief.wang"),
    ("dr.qian", "钱医生", "GS", [Role.SURGEON], "chief.wang"),
    ("chief.he", "何主任", "REHAB", [Role.DEPT_HEAD, Role.THERAPIST], "ma.zhao"),
    ("pt.sun", "孙治疗师", "REHAB", [Role.THERAPIST], "chief.he"),
    ("patient.zhou", "周患者", None, [Role.PATIENT], None),
]
HEADS = {"GS": "chief.wang", "REHAB": "chief.he", "MA": "ma.zhao"}

# mrn, name, gender, birth date, id number, phone, department, login user
PATIENTS = [
    (
        "P0001",
        "周建国",
        "M",
        date(1962, 3, 14),
        "340202196203141234",
        "13805531234",
        "REHAB",
        "patient.zhou",
    ),
    ("P0002", "张秀英", "F", date(1971, 8, 2), "340203197108021247", "13905532345", "GS", None),
    ("P0003", "王德明", "M", date(1958, 11, 20), "340204195811201258", "13705533456", "GS", None),
    ("P0004", "李淑珍", "F", date(1980, 5, 9), "34020519800509126X", "13605534567", "GS", None),
    ("P0005", "陈志强", "M", date(1990, 1, 30), "340206199001301279", "13505535678", "REHAB", None),
]


async def seed(session: AsyncSession, services: Services) -> dict[str, int]:
    depts: dict[str, Department] = {}
    for code, name, name_en in DEPARTMENTS:
        dept = (
            await session.execute(sa.select(Department).where(Department.code == code))
        ).scalar_one_or_none()
        if dept is None:
            dept = Department(code=code, name=name, name_en=name_en)
            session.add(dept)
            await session.flush()
        depts[code] = dept

    users: dict[str, User] = {}
    password_hash: str | None = None
    created = 0
    for username, name, dept_code, roles, _ in USERS:
        user = (
            await session.execute(sa.select(User).where(User.username == username))
        ).scalar_one_or_none()
        if user is None:
            password_hash = services.hashing.hash(DEMO_PASSWORD)
            user = User(
                username=username,
                display_name=name,
                password_hash=password_hash,
                department_id=depts[dept_code].id if dept_code else None,
                roles=[str(r) for r in roles],
            )
            session.add(user)
            await session.flush()
            created += 1
        users[username] = user
    for username, _, _, roles, superior in USERS:
        if superior:
            users[username].superior_id = users[superior].id
        if Role.PATIENT not in roles:
            for provider in ("dingtalk", "wecom"):
                await bind_external_identity(
                    session, users[username], provider=provider, external_id=username
                )
    for code, head in HEADS.items():
        depts[code].head_user_id = users[head].id
    await bind_external_identity(
        session, users["patient.zhou"], provider="wechat_oa", external_id="demo-openid-zhou"
    )

    cipher = services.cipher
    for mrn, name, gender, birth, id_number, phone, dept_code, login in PATIENTS:
        patient = (
            await session.execute(sa.select(Patient).where(Patient.mrn == mrn))
        ).scalar_one_or_none()
        if patient is None:
            session.add(
                Patient(
                    mrn=mrn,
                    name=name,
                    gender=gender,
                    birth_date=birth,
                    id_number_enc=cipher.encrypt(id_number),
                    id_number_hash=cipher.lookup_hash(id_number),
                    phone_enc=cipher.encrypt(phone),
                    phone_hash=cipher.lookup_hash(phone),
                    department_id=depts[dept_code].id,
                    user_id=users[login].id if login else None,
                )
            )
    await session.flush()
    return {"users created": created, "users": len(users), "patients": len(PATIENTS)}
