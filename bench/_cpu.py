"""CPU seconds used by processes (Linux /proc), and py-spy profiles of running processes.

The fleet run uses them to say what one request costs in CPU on each tier (API processes,
workers, PostgreSQL): on a shared machine that is steadier than latency, which moves with
whatever else runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the rest follows the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system time of `pid`; with `children`, also of its live children and of the
    children it has already reaped (a PostgreSQL postmaster and its backends)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based overall.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    total = utime + stime
    if children:
        total += cutime + cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                child = _stat(int(entry.name))
                if child is not None and int(child[1]) == pid:
                    total += int(child[11]) + int(child[12])
    return total / TICKS


class Profiler:
    """`py-spy record` on each process until it exits; `top()` sums the samples by function."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

    def attach(self, pid: int, name: str) -> None:
        if not Path(self.binary).exists():
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self.directory.mkdir(parents=True, exist_ok=True)
        out = self.directory / f"{name}.folded"
        process = subprocess.Popen(
            [
                self.binary,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.runs.append((process, out))

    def wait(self) -> None:
        for process, _ in self.runs:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def top(
        self,
        *,
        own_code: tuple[str, ...] = ("api/", "sync/", "notifications/", "bots/"),
        limit: int = 25,
    ) -> str:
        """Inclusive share of samples per frame (each frame counted once per stack), for the
        project's own code and for everything, and the total sample count."""
        inclusive: Counter[str] = Counter()
        leaf: Counter[str] = Counter()
        total = 0
        for _, path in self.runs:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                n = int(count)
                frames = stack.split(";")
                total += n
                leaf[frames[-1]] += n
                for frame in set(frames):
                    inclusive[frame] += n
        if not total:
            return "no samples"
        lines = [f"{total} samples"]
        lines.append("own code, inclusive:")
        mine = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in own_code)]
        lines += [f"  {n / total:6.1%}  {f}" for f, n in mine[:limit]]
        lines.append("everything, inclusive:")
        lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(limit)]
        lines.append("leaf (self) time:")
        lines += [f"  {n / total:6.1%}  {f}" for f, n in leaf.most_common(limit)]
        return "\n".join(lines)
