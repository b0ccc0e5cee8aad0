"""The PWA's own unit tests (Vitest: outbox, cache, session) run as part of the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PWA = Path(__file__).resolve().parents[2] / "pwa"
REQUIRE_SERVICES = os.environ.get("BEDSIDE_TEST_REQUIRE_SERVICES") == "1"


def test_vitest_unit_tests_pass() -> None:
    if not (PWA / "node_modules").is_dir() or shutil.which("npm") is None:
        if REQUIRE_SERVICES:
            pytest.fail("pwa/node_modules is missing: run `make pwa` (npm ci) before the tests")
        pytest.skip("pwa/node_modules is missing (run `make pwa`)")
    result = subprocess.run(
        ["npm", "test", "--prefix", str(PWA), "--silent", "--", "--reporter=dot"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
