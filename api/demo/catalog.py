"""Demo surgery catalog (普外科手术目录) and the demo surgeons' privileges.

Codes follow ICD-9-CM-3 as Chinese hospitals use them; grades follow the national
grading catalog (四级手术目录) where a procedure is listed there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import SYSTEM_ACTOR
from api.domain import approvals, privileges
from api.models.people import User
from api.models.privileges import GrantStatus, PrivilegeGrant
from api.services import Services

ORDER = 20

# code, name, English name, grade, level
PROCEDURES = [
    ("86.04", "体表脓肿切开引流术", "Incision and drainage of superficial abscess", 1, "hospital"),
    ("86.22", "伤口清创术", "Excisional debridement of wound", 1, "hospital"),
    ("86.3", "体表肿物切除术", "Local excision of skin lesion", 1, "hospital"),
    ("47.09", "阑尾切除术", "Appendectomy", 2, "hospital"),
    ("53.00", "腹股沟疝修补术", "Unilateral inguinal hernia repair", 2, "provincial"),
    ("85.21", "乳腺肿物切除术", "Local excision of breast lesion", 2, "hospital"),
    ("51.23", "腹腔镜胆囊切除术", "Laparoscopic cholecystectomy", 3, "provincial"),
    ("06.2", "甲状腺单侧叶切除术", "Unilateral thyroid lobectomy", 3, "provincial"),
    ("43.7", "远端胃大部切除术", "Partial gastrectomy with jejunal anastomosis", 3, "provincial"),
    ("45.73", "右半结肠切除术", "Right hemicolectomy", 3, "provincial"),
    ("52.7", "胰十二指肠切除术", "Pancreaticoduodenectomy (Whipple)", 4, "national"),
    ("50.3", "肝叶切除术", "Lobectomy of liver", 4, "national"),
    ("43.99", "全胃切除术", "Total gastrectomy", 4, "national"),
    ("48.63", "腹腔镜直肠癌根治术", "Laparoscopic anterior resection of rectum", 4, "national"),
]

# username, up to grade
PRIVILEGES = [("dr.li", 3), ("dr.qian", 4), ("chief.wang", 4)]
VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2029, 12, 31, 16, tzinfo=UTC)  # 2029-12-31 24:00 Asia/Shanghai


async def seed(session: AsyncSession, services: Services) -> dict[str, int]:
    # The surgery, privilege_grant and surgery_override definitions sit beside the engine's
    # in its definitions directory; publishing is idempotent, so this only makes sure.
    await approvals.publish_definitions(session)
    for code, name, name_en, grade, level in PROCEDURES:
        await privileges.upsert_procedure(
            session, code=code, name=name, name_en=name_en, grade=grade, level=level
        )
    granted = 0
    for username, grade in PRIVILEGES:
        surgeon = (
            await session.execute(sa.select(User).where(User.username == username))
        ).scalar_one()
        existing = (
            await session.execute(
                sa.select(PrivilegeGrant.id).where(
                    PrivilegeGrant.surgeon_id == surgeon.id,
                    PrivilegeGrant.max_grade == grade,
                    PrivilegeGrant.status == GrantStatus.ACTIVE.value,
                )
            )
        ).first()
        if existing is None:
            await privileges.grant_directly(
                session,
                surgeon,
                max_grade=grade,
                valid_from=VALID_FROM,
                valid_until=VALID_UNTIL,
                reason="院授权管理委员会2024年度授权 / 2024 annual authorization",
                actor=SYSTEM_ACTOR,
                now=VALID_FROM,
            )
            granted += 1
    return {"procedures": len(PROCEDURES), "privileges granted": granted}
