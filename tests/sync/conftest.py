from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from api.models.patients import Patient
from api.services import Services


@pytest.fixture
async def patient_ids(demo: Services) -> dict[str, int]:
    async with demo.db.session() as session:
        rows = (await session.execute(sa.select(Patient.mrn, Patient.id))).all()
    return {mrn: pid for mrn, pid in rows}


def edit(patient_id: int, base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {"patientId": patient_id, "base": base, "changes": changes}
