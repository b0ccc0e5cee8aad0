"""Login time for a real username with a wrong password vs an unknown username.

Both must cost one argon2 verification at the configured cost (the unknown one against a
dummy hash), so the time does not tell which usernames exist. Prints the median of each
and their ratio (should be close to 1).

    .venv/bin/python bench/login_timing.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

from api.auth import PasswordHashing
from api.settings import Settings


def median_ms(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    hashing = PasswordHashing(Settings())  # the production argon2 cost
    real_hash = hashing.hash("bedside-demo")
    hashing.verify(None, "warm-up")  # the dummy hash is made once per process
    real = median_ms(lambda: hashing.verify(real_hash, "wrong"), args.rounds)
    unknown = median_ms(lambda: hashing.verify(None, "wrong"), args.rounds)
    print(f"real username, wrong password: {real:7.1f} ms (median of {args.rounds})")
    print(f"unknown username:              {unknown:7.1f} ms")
    print(f"ratio unknown/real:            {unknown / real:7.2f}")


if __name__ == "__main__":
    main()
