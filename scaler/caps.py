"""Spend-cap checks: pure functions of numbers, no I/O and no clock reads.

The policy plans with them and the executor checks each create again with what it has really
committed, so a cap holds even when a fallback GPU type costs more than the planned one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

# Prices are sums of cents held in floats: 0.34 + 0.34 + 0.22 must fit a 0.90 cap.
USD_TOLERANCE = 1e-9
SECONDS_PER_DAY = 86_400


def worker_headroom(counted: int, max_workers: int) -> int:
    """How many workers may still be added when `counted` (booting and draining included) exist."""
    return max(0, max_workers - counted)


def fits_usd_cap(usd_per_hour_now: float, price: float, max_usd_per_hour: float) -> bool:
    """Whether one more worker at `price` keeps the pool at or under the hourly cap."""
    return usd_per_hour_now + price <= max_usd_per_hour + USD_TOLERANCE


def over_usd_cap(usd_per_hour_now: float, max_usd_per_hour: float) -> bool:
    return usd_per_hour_now > max_usd_per_hour + USD_TOLERANCE


def budget_exhausted(spent_today_usd: float, daily_budget_usd: float | None) -> bool:
    """Whether today's spend has reached the optional daily budget."""
    return daily_budget_usd is not None and spent_today_usd >= daily_budget_usd - USD_TOLERANCE


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).date().isoformat()


def accrue_spend(day: str, spent_usd: float, accounted_at: float | None, usd_per_hour: float,
                 now: float) -> tuple[str, float]:
    """Today's spend after charging `usd_per_hour` from `accounted_at` to `now` (uptime x price).

    The charge restarts at UTC midnight. `accounted_at` None (a first tick) charges nothing.
    Returns (utc day of `now`, spend of that day).
    """
    today = utc_day(now)
    midnight = math.floor(now / SECONDS_PER_DAY) * SECONDS_PER_DAY
    start = now if accounted_at is None else accounted_at
    if today != day:
        spent_usd = 0.0
        start = max(start, midnight)
    return today, spent_usd + usd_per_hour * max(0.0, now - start) / 3600.0
