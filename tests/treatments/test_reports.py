"""Statistics on a known data set, the Excel export (logged), and attachment uploads."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
import sqlalchemy as sa

from api.auth import Actor
from api.domain.treatments.appointments import book_appointment, mark_no_shows
from api.models.audit import AccessLog
from api.models.people import User
from api.models.treatments import Attachment
from api.services import Services
from api.storage import LocalStorage, StorageSettings
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, execute_session, make_order, make_slot, png_bytes

SHANGHAI = ZoneInfo("Asia/Shanghai")
D1 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)  # a Monday
D2 = datetime(2026, 3, 3, 15, 0, tzinfo=SHANGHAI)
STATS = """query($f: Date!, $t: Date!, $p: StatPeriod!, $g: StatGroup!) {
  treatmentStatistics(from: $f, to: $t, period: $p, groupBy: $g) { period label sessions revenueCents fulfilled noShows noShowRate } }"""


async def _known_data_set(demo: Services) -> None:
    """pt.sun: 3 physiotherapy on D1 (60 元 each) + 1 laser on D2 (300 元), 1 no-show on D1;
    chief.he: 2 acupuncture on D1 (80 元 each)."""
    physio = await make_order(demo, "P0005", "PHYSIO", sessions=5)
    laser = await make_order(demo, "P0005", "LASER", sessions=1)
    acup = await make_order(demo, "P0001", "ACUP", sessions=2)
    for n in range(3):
        await execute_session(
            demo, therapist="pt.sun", order_id=physio, at=D1 + timedelta(minutes=30 * n)
        )
    await execute_session(demo, therapist="pt.sun", order_id=laser, at=D2)
    for n in range(2):
        await execute_session(
            demo, therapist="chief.he", order_id=acup, at=D1 + timedelta(hours=1, minutes=30 * n)
        )
    slot = await make_slot(demo, starts_at=D1.replace(hour=16))
    async with demo.db.transaction() as session:
        sun = (await session.execute(sa.select(User).where(User.username == "pt.sun"))).scalar_one()
        await book_appointment(
            session, slot, actor=Actor.from_user(sun), order_id=physio, now=D1 - timedelta(days=1)
        )
    async with demo.db.transaction() as session:
        assert len(await mark_no_shows(session, now=D1.replace(hour=20))) == 1


async def test_statistics_on_a_known_data_set(gql: GraphQLClient, demo: Services) -> None:
    await _known_data_set(demo)
    head = await gql.as_user("chief.he")
    by_therapist = (
        await head.data(STATS, {"f": "2026-03-01", "t": "2026-03-31", "p": "DAY", "g": "THERAPIST"})
    )["treatmentStatistics"]
    assert sorted(by_therapist, key=lambda r: (r["period"], r["label"])) == [
        {
            "period": "2026-03-02",
            "label": "何主任",
            "sessions": 2,
            "revenueCents": 16000,
            "fulfilled": 2,
            "noShows": 0,
            "noShowRate": 0.0,
        },
        {
            "period": "2026-03-02",
            "label": "孙治疗师",
            "sessions": 3,
            "revenueCents": 18000,
            "fulfilled": 3,
            "noShows": 1,
            "noShowRate": 0.25,
        },
        {
            "period": "2026-03-03",
            "label": "孙治疗师",
            "sessions": 1,
            "revenueCents": 30000,
            "fulfilled": 1,
            "noShows": 0,
            "noShowRate": 0.0,
        },
    ]
    by_item_month = (
        await head.data(STATS, {"f": "2026-03-01", "t": "2026-03-31", "p": "MONTH", "g": "ITEM"})
    )["treatmentStatistics"]
    assert {r["label"]: (r["sessions"], r["revenueCents"]) for r in by_item_month} == {
        "理疗": (3, 18000),
        "激光": (1, 30000),
        "针灸": (2, 16000),
    }
    by_department_week = (
        await head.data(
            STATS, {"f": "2026-03-01", "t": "2026-03-31", "p": "WEEK", "g": "DEPARTMENT"}
        )
    )["treatmentStatistics"]
    assert by_department_week == [
        {
            "period": "2026-W10",
            "label": "康复医学科",
            "sessions": 6,
            "revenueCents": 64000,
            "fulfilled": 6,
            "noShows": 1,
            "noShowRate": round(1 / 7, 4),
        }
    ]
    # Another department's head sees none of it; a patient may not ask at all.
    wang = await gql.as_user("chief.wang")
    assert (
        await wang.data(STATS, {"f": "2026-03-01", "t": "2026-03-31", "p": "DAY", "g": "ITEM"})
    )["treatmentStatistics"] == []
    zhou = await gql.as_user("patient.zhou")
    assert (
        error_code(
            await zhou.error(STATS, {"f": "2026-03-01", "t": "2026-03-31", "p": "DAY", "g": "ITEM"})
        )
        == "FORBIDDEN"
    )


async def test_excel_export_opens_and_is_logged(gql: GraphQLClient, demo: Services) -> None:
    await _known_data_set(demo)
    zhao = await gql.as_user("ma.zhao")
    exported = (
        await zhao.data(
            'mutation { exportTreatmentStatistics(from: "2026-03-01", to: "2026-03-31", period: DAY, groupBy: THERAPIST) { filename contentBase64 } }'
        )
    )["exportTreatmentStatistics"]
    assert exported["filename"].endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(exported["contentBase64"])))
    sheet = book.active
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert sorted((r[0], r[2], r[3], r[4], r[6]) for r in rows) == [
        ("2026-03-02", "何主任", 2, 160, 0),
        ("2026-03-02", "孙治疗师", 3, 180, 1),
        ("2026-03-03", "孙治疗师", 1, 300, 0),
    ]
    async with demo.db.session() as session:
        log = (
            (await session.execute(sa.select(AccessLog).where(AccessLog.action == "export")))
            .scalars()
            .all()
        )
    assert (
        len(log) == 1 and log[0].resource == "treatment_statistics" and log[0].detail["rows"] == 3
    )


@pytest.fixture
def small_storage(demo: Services, tmp_path: Path) -> LocalStorage:
    """Storage in a fresh directory with a 4 KB limit, so rejections are easy to provoke."""
    storage = LocalStorage(tmp_path / "attachments")
    demo.extras["storage_settings"] = StorageSettings(max_bytes=4096)
    demo.extras["storage"] = storage
    return storage


async def test_attachment_size_and_type_are_checked_and_nothing_is_left(
    gql: GraphQLClient, demo: Services, http: httpx.AsyncClient, small_storage: LocalStorage
) -> None:
    sun = await gql.as_user("pt.sun")
    headers = {"Authorization": f"Bearer {sun.token}"}
    cases = [
        (("big.png", _noise_png(), "image/png"), 413, "FILE_TOO_LARGE"),
        (("fake.png", b"<?php echo 1; ?>" * 10, "image/png"), 415, "UNSUPPORTED_TYPE"),
        (("photo.jpg", png_bytes(), "image/jpeg"), 415, "UNSUPPORTED_TYPE"),  # says JPEG, is PNG
        (("empty.png", b"", "image/png"), 400, "VALIDATION"),
    ]
    for upload, status, code in cases:
        response = await http.post("/attachments", files={"file": upload}, headers=headers)
        assert response.status_code == status, response.text
        assert (
            response.json()["error"]["code"] == code and response.json()["error"]["field"] == "file"
        )
    anonymous = await http.post("/attachments", files={"file": ("a.png", png_bytes(), "image/png")})
    assert anonymous.status_code == 401
    zhou = await gql.as_user("patient.zhou")
    patient_upload = await http.post(
        "/attachments",
        files={"file": ("a.png", png_bytes(), "image/png")},
        headers={"Authorization": f"Bearer {zhou.token}"},
    )
    assert patient_upload.status_code == 403
    assert small_storage.keys() == [] and await count(demo, Attachment) == 0

    ok = await http.post(
        "/attachments", files={"file": ("ok.png", png_bytes(), "image/png")}, headers=headers
    )
    assert ok.status_code == 201
    body = ok.json()
    assert small_storage.keys() == [body["key"]] and await count(demo, Attachment) == 1
    assert await small_storage.get(body["key"]) == png_bytes()


def _noise_png() -> bytes:
    """A real PNG larger than 4 KB (random pixels do not compress)."""
    import os

    from PIL import Image

    image = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_storage_that_cannot_write_gives_a_clear_error_and_leaves_nothing(
    gql: GraphQLClient, demo: Services, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the attachment directory should be")
    demo.extras["storage_settings"] = StorageSettings(max_bytes=1024 * 1024)
    demo.extras["storage"] = LocalStorage(blocker)
    sun = await gql.as_user("pt.sun")
    response = await http.post(
        "/attachments",
        files={"file": ("a.png", png_bytes(), "image/png")},
        headers={"Authorization": f"Bearer {sun.token}"},
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert (
        error["code"] == "STORAGE_UNAVAILABLE"
        and "附件存储不可用" in error["message"]
        and "unavailable" in error["message"]
    )
    assert await count(demo, Attachment) == 0 and blocker.read_text().startswith("a file")
