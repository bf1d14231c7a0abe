"""Serverless preview spend, the pure part: verdicts and charges from numbers and a clock (tested from tables).

Every attempt reserves its worst case (the endpoint's execution timeout x price) in the minute it starts and
is settled there to what RunPod reports. The last hour of those minutes is held against the hourly cap and
against each requester's share of it. A job whose bill is not known yet (its answer was lost, or we gave up
on it) stays open at its worst case until RunPod says what it ran, or until it can no longer change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from tasks.limits import Verdict

SPEND_WINDOW_S = 3600
BUCKET_S = 60
#: A retry hint when the budget is held by jobs whose bill is not known yet: about when they are re-read.
HELD_RETRY_S = 60.0

#: What a read of a job's /status said: a final record, still queued or running, unknown to RunPod, no answer.
ReadState = Literal["final", "pending", "gone", "unreadable"]


@dataclass(frozen=True)
class Reservation:
    """A worst case counted in `minute`, for the global cap and for `requester`'s share."""

    minute: int
    usd: float
    requester: str


@dataclass(frozen=True)
class OpenJob:
    """A serverless job whose bill is not known yet; it stays counted at its reservation's worst case."""

    job_id: str
    endpoint_id: str
    requester: str
    minute: int
    reserved_usd: float
    #: Redis time after which a job RunPod does not answer about is charged its worst case
    deadline: float

    @property
    def reservation(self) -> Reservation:
        return Reservation(self.minute, self.reserved_usd, self.requester)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> OpenJob:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Refusal:
    """Why a reservation was refused: which limit, what it allows, what the last hour used, when to retry."""

    limit: Literal["cap", "share"]
    limit_usd: float
    #: counted against the limit: the last hour's minutes, plus open jobs older than that
    spent_usd: float
    #: the part of it held for open jobs (their worst case)
    held_usd: float
    verdict: Verdict


def minute_of(now: float) -> int:
    return int(now // BUCKET_S)


def in_window(minute: int, now: float) -> bool:
    return minute > minute_of(now) - SPEND_WINDOW_S // BUCKET_S


def spend_in_window(spent: Mapping[int, float], now: float) -> float:
    """USD counted in the last hour, from per-minute buckets keyed by minute number."""
    return sum(usd for minute, usd in spent.items() if in_window(minute, now))


def held_outside_window(jobs: Iterable[OpenJob], now: float, requester: str | None = None) -> float:
    """Worst cases of open jobs whose minute has left the window: still owed, so still counted.

    Inside the window an open job's worst case is in its minute's bucket already.
    """
    return sum(job.reserved_usd for job in jobs
               if not in_window(job.minute, now) and requester in (None, job.requester))


def spend_verdict(spent: Mapping[int, float], now: float, cap_usd: float, reserve_usd: float,
                  held_usd: float = 0.0) -> Verdict:
    """May `reserve_usd` more be spent with at most `cap_usd` in any hour? If not, when enough ages out.

    A bucket for minute m leaves the window at (m + 60) minutes; `held_usd` (open jobs older than the
    window) leaves only when those jobs are settled, so a refusal it causes gets HELD_RETRY_S. When even
    an empty window cannot hold `reserve_usd`, retry_after_s is infinite.
    """
    if reserve_usd > cap_usd + 1e-12:
        return Verdict(False, math.inf)
    live = sorted((m, usd) for m, usd in spent.items() if in_window(m, now))
    total = held_usd + sum(usd for _, usd in live)
    if total + reserve_usd <= cap_usd + 1e-12:
        return Verdict(True)
    for minute, usd in live:
        total -= usd
        if total + reserve_usd <= cap_usd + 1e-12:
            return Verdict(False, max(0.0, (minute * BUCKET_S + SPEND_WINDOW_S) - now))
    return Verdict(False, HELD_RETRY_S)


def reserve_verdict(spent: Mapping[int, float], requester_spent: Mapping[int, float], jobs: Iterable[OpenJob],
                    now: float, cap_usd: float, share: float, reserve_usd: float,
                    requester: str) -> Refusal | None:
    """None when `requester` may reserve `reserve_usd`: within the cap and within its share of the cap."""
    jobs = list(jobs)
    checks: tuple[tuple[Literal["cap", "share"], float, Mapping[int, float], str | None], ...] = (
        ("cap", cap_usd, spent, None), ("share", cap_usd * share, requester_spent, requester))
    for limit, limit_usd, buckets, whose in checks:
        held = held_outside_window(jobs, now, whose)
        verdict = spend_verdict(buckets, now, limit_usd, reserve_usd, held)
        if not verdict.allowed:
            open_usd = sum(job.reserved_usd for job in jobs if whose in (None, job.requester))
            return Refusal(limit, limit_usd, spend_in_window(buckets, now) + held, open_usd, verdict)
    return None


def charge(read: ReadState, execution_ms: int | None, overdue: bool, worst_usd: float,
           usd_per_second: float) -> float | None:
    """What a job costs, or None while its bill can still change (it stays open).

    A final record is billed by its executionTime (missing: the worst case). A job RunPod no longer knows
    can no longer change: worst case. One RunPod does not answer about is charged its worst case once
    `overdue` (past its deadline); a queued or running one stays open whatever the clock says.
    """
    if read == "final":
        return worst_usd if execution_ms is None else execution_ms / 1000 * usd_per_second
    if read == "gone" or (read == "unreadable" and overdue):
        return worst_usd
    return None
