"""How much demo data ``segcore sample`` will make: fixed maxima and a memory check.

The generator holds a plan of every user, then the events of one chunk of users at a
time (two chunks while one is written). Measured: about 0.2 KB per user for the plan and
the users table, about 0.9 KB per user-day of events of a chunk (10,000 users x 200 days
peaked at 1.8 GB). The estimate below rounds both up.
"""

from __future__ import annotations

from pathlib import Path

from segcore.errors import UsageError

MAX_USERS = 50_000_000
MAX_DAYS = 3_650  # ten years
BYTES_PER_USER = 1_000
BYTES_PER_CHUNK_USER_DAY = 1_000
BASE_BYTES = 300_000_000  # the interpreter, Polars, NumPy


def memory_needed(users: int, days: int, chunk_users: int) -> int:
    """Bytes of memory ``generate(users=..., days=...)`` is expected to need at its peak."""
    in_flight = 2 * min(users, chunk_users)
    return BASE_BYTES + users * BYTES_PER_USER + in_flight * days * BYTES_PER_CHUNK_USER_DAY


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), if known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_size(users: int, days: int, chunk_users: int) -> None:
    """Refuse sizes over the maxima or over the memory this machine has free (UsageError)."""
    if users < 1:
        raise UsageError(f"--users must be at least 1, got {users}")
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")
    if users > MAX_USERS:
        raise UsageError(f"--users {users:,} is more than the sample generator makes "
                         f"(at most {MAX_USERS:,})")
    if days > MAX_DAYS:
        raise UsageError(f"--days {days:,} is more than the sample generator makes "
                         f"(at most {MAX_DAYS:,})")
    need, free = memory_needed(users, days, chunk_users), available_memory()
    if free is not None and need > free:
        raise UsageError(
            f"--users {users:,} with --days {days:,} needs about {need / 1e9:.1f} GB of memory "
            f"and this machine has {free / 1e9:.1f} GB available; make fewer users or days"
        )
