"""The layers hold: the import contracts of pyproject.toml, and no new import circle.

The contracts (import-linter): the domain imports no adapter; bots and notification
delivery never import each other; platform clients sit below all of them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "bots", "notifications", "sync", "integrations")

# Circles that exist today, each to be opened; the list may only shrink. A package whose
# __init__ gathers its submodules while they import the package counts as a circle too.
KNOWN_CIRCLES = {
    frozenset(
        {
            "api.domain.treatments.appointments",
            "api.domain.treatments.orders",
            "api.domain.treatments.waitlist",
        }
    ),
}


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _circles(graph: grimp.ImportGraph) -> set[frozenset[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.add(frozenset(group))
    return found


def test_no_new_import_circle() -> None:
    sys.path.insert(0, str(ROOT))
    circles = _circles(grimp.build_graph(*PACKAGES))
    assert circles - KNOWN_CIRCLES == set(), "a new import circle"
    assert KNOWN_CIRCLES - circles == set(), "a known circle is open now: drop it from the list"
