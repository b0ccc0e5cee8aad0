"""A real API process (uvicorn) on a loopback port, over the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "BEDSIDE_DATABASE_URL": settings.database_url,
        "BEDSIDE_SECRET_KEY": settings.effective_secret_key,
        "BEDSIDE_DATA_DIR": str(settings.data_dir),
        "BEDSIDE_ARGON2_TIME_COST": str(settings.argon2_time_cost),
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": str(settings.argon2_memory_cost_kib),
        "BEDSIDE_ARGON2_PARALLELISM": str(settings.argon2_parallelism),
        "BEDSIDE_LOG_JSON": "true",
        "BEDSIDE_LOG_LEVEL": "WARNING",
        "BEDSIDE_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
        **extra,
    }


@contextmanager
def api_process(settings: Settings, *, log: Path, **extra_env: str) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env_for(settings, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API process did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
