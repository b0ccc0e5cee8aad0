"""`bedside hl7 listen` as the README tells an integrator to run it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from api.cli import main
from integrations.hl7.config import HL7Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_hl7_variable_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        f"BEDSIDE_HL7_{name.upper()}"
        for name in HL7Settings.model_fields
        if f"`BEDSIDE_HL7_{name.upper()}`" not in text
    ]
    assert missing == []
    assert "bedside hl7 listen --host 0.0.0.0" in text


def test_listen_takes_the_address() -> None:
    result = CliRunner().invoke(main, ["hl7", "listen", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "0.0.0.0" in result.output
