"""The assembly installs what the domain's areas register: the same guards, hooks and
hash-chain sources as importing every domain module would (a new area that registers
must be named in `api.assembly`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_REGISTRIES = """
import json
from api import audit
from api.domain.approvals import policy

def names(fns):
    return sorted(f"{f.__module__}.{f.__qualname__}" for f in fns)

print(json.dumps({
    "guards": {k: names(v) for k, v in sorted(policy._guards.items()) if v},
    "completion": {k: names(v) for k, v in sorted(policy._completion_hooks.items()) if v},
    "closing": {k: names(v) for k, v in sorted(policy._closing_hooks.items()) if v},
    "streams": names(audit.expected_stream_sources),
}))
"""


def _registries(setup: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", setup + _REGISTRIES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_assembly_installs_every_area() -> None:
    installed = _registries("from api.assembly import install_domain\ninstall_domain()\n")
    everything = _registries(
        "from api.assembly import install_domain\nfrom api.domain import import_all_domain_modules\n"
        "import_all_domain_modules()\ninstall_domain()\n"
    )
    assert installed == everything
    # The processes that end in a hook: surgery, its emergency override, a privilege
    # grant, a penalty appeal.
    assert set(installed["completion"]) == {
        "surgery",
        "surgery_override",
        "privilege_grant",
        "penalty_appeal",
    }
    assert set(installed["guards"]) == {"surgery"}
    assert len(installed["streams"]) == 4  # approvals, treatment orders, privileges, penalties


def test_services_alone_install_nothing() -> None:
    built = _registries(
        "from api.services import Services\nfrom api.settings import Settings\n"
        "Services.build(Settings(database_url='sqlite+aiosqlite:///:memory:'))\n"
    )
    assert built["completion"] == {} and built["guards"] == {}
