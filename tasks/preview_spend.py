"""Serverless previews under the spend limits: reserve, call, settle, and re-read jobs whose bill is open.

Each attempt reserves the most one job can bill (PREVIEW_EXECUTION_TIMEOUT_SECONDS, sent with every job as
its RunPod policy, x PREVIEW_USD_PER_SECOND) under PREVIEW_MAX_USD_PER_HOUR and the requester's share of
it, and is settled to RunPod's executionTime. A job we gave up on whose bill is not known stays open at
that worst case; later previews and the autoscale beat re-read it and settle it, or charge the worst case
once RunPod no longer knows the job, or has not answered about it past its deadline.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from settings import Settings, get_settings
from tasks.errors import PreviewFailed, PreviewRefused
from tasks.limits import key_prefix, limits_redis
from tasks.spend import Refusal, Reservation, charge
from tasks.spend_meter import SpendMeter

if TYPE_CHECKING:
    from tasks.endpoint import Attempt, JobRead, Outcome, PreviewEndpoint

log = logging.getLogger(__name__)

#: Open jobs are re-read by one worker at a time, at most this often (every preview would otherwise).
SWEEP_INTERVAL_S = 5.0
#: A sweep stops starting reads after this long, so it cannot hold up the preview or tick that runs it.
SWEEP_BUDGET_S = 10.0
SWEEP_MAX_JOBS = 20


class PreviewSpend:
    """The endpoint client wrapped in the spend limits; one per process (it keeps its HTTP session)."""

    def __init__(self, meter: SpendMeter, endpoint: PreviewEndpoint, usd_per_second: float,
                 execution_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.meter = meter
        self.endpoint = endpoint
        self.usd_per_second = usd_per_second
        self.execution_timeout_s = execution_timeout_s
        self.clock = clock

    @classmethod
    def from_settings(cls, s: Settings) -> PreviewSpend:
        from tasks.endpoint import PreviewEndpoint

        if s.runpod_api_key is None:
            raise PreviewFailed("RUNPOD_PREVIEW_ENDPOINT_ID is set but RUNPOD_API_KEY is not")
        endpoint = PreviewEndpoint(s.runpod_preview_endpoint_id or "", s.runpod_api_key.get_secret_value(),
                                   s.preview_timeout_s, s.preview_max_retries, s.preview_execution_timeout_s)
        meter = SpendMeter(limits_redis(), s.preview_max_usd_per_hour, s.preview_requester_share, key_prefix())
        return cls(meter, endpoint, s.preview_usd_per_second, s.preview_execution_timeout_s)

    @property
    def worst_usd(self) -> float:
        """The most one job can bill: RunPod stops it at the execution timeout."""
        return self.execution_timeout_s * self.usd_per_second

    def call(self, job_input: dict[str, Any], requester: str) -> tuple[Outcome, float]:
        """The endpoint's outcome and what its attempts cost (open ones at their worst case).

        Raises PreviewRefused when a limit binds before an attempt, PreviewFailed when no attempt succeeds.
        """
        from tasks.endpoint import EndpointError

        reservations: list[Reservation] = []
        billed: list[float] = []

        def reserve(number: int) -> None:
            reservation = self.meter.reserve(self.worst_usd, requester)
            if isinstance(reservation, Refusal):
                raise PreviewRefused(self.refusal_text(reservation, requester))
            reservations.append(reservation)

        def settle(attempt: Attempt) -> None:
            billed.append(self._settle(reservations[-1], attempt))

        try:
            outcome = self.endpoint.call(job_input, before_attempt=reserve, after_attempt=settle)
        except EndpointError as exc:
            raise PreviewFailed(str(exc)) from None
        return outcome, round(sum(billed), 6)

    def _settle(self, reservation: Reservation, attempt: Attempt) -> float:
        usd = charge(attempt.read, attempt.execution_ms, False, self.worst_usd, self.usd_per_second)
        if usd is not None or attempt.job_id is None:
            usd = self.worst_usd if usd is None else usd
            self.meter.settle(reservation, usd)
            return usd
        self.meter.hold(reservation, attempt.job_id, self.endpoint.endpoint_id,
                        self.meter.now() + self.execution_timeout_s)
        log.warning("preview job %s: bill not known yet (%s); $%.4f held until it is re-read", attempt.job_id,
                    attempt.read, reservation.usd)
        return reservation.usd

    def settle_open(self) -> int:
        """Re-read open jobs and settle those whose bill is known or can no longer change; how many closed.

        One worker at a time, at most every SWEEP_INTERVAL_S. A pending job is cancelled again (we gave up
        on it). Once the endpoint does not answer, the rest are not read: only their deadlines count.
        """
        jobs = self.meter.open_jobs()
        if not jobs or not self.meter.claim_sweep(SWEEP_INTERVAL_S):
            return 0
        now, started, closed = self.meter.now(), self.clock(), 0
        unanswered: JobRead | None = None
        for job in jobs[:SWEEP_MAX_JOBS]:
            if unanswered is None and self.clock() - started > SWEEP_BUDGET_S:
                break
            read = unanswered or self.endpoint.read_job(job.job_id, job.endpoint_id)
            if read.state == "pending":
                self.endpoint.cancel_job(job.job_id, job.endpoint_id)
            elif read.state == "unreadable":
                unanswered = read
            usd = charge(read.state, read.execution_ms, now >= job.deadline, job.reserved_usd, self.usd_per_second)
            if usd is not None and self.meter.close(job, usd):
                closed += 1
                log.info("preview job %s settled at $%.6f (%s %s, $%.4f was held)", job.job_id, usd, read.state,
                         read.status or read.error or "", job.reserved_usd)
        return closed

    def refusal_text(self, refusal: Refusal, requester: str) -> str:
        cap = f"PREVIEW_MAX_USD_PER_HOUR=${self.meter.cap_usd:g}"
        if refusal.limit == "cap":
            limit = f"serverless spend cap {cap}"
        else:
            limit = (f"spend share of requester {requester!r} (PREVIEW_REQUESTER_SHARE={self.meter.share:g} x "
                     f"{cap} = ${refusal.limit_usd:.4f} an hour)")
        if math.isinf(refusal.verdict.retry_after_s):
            return (f"{limit} is below what one preview call may cost (${self.worst_usd:.4f} = "
                    f"PREVIEW_EXECUTION_TIMEOUT_SECONDS x PREVIEW_USD_PER_SECOND); previews on the endpoint are "
                    f"off until it is raised")
        held = f" (${refusal.held_usd:.4f} of it held for jobs whose bill is not known yet)" if refusal.held_usd else ""
        at = datetime.now(UTC) + timedelta(seconds=refusal.verdict.retry_after_s)
        return (f"{limit} reached: ${refusal.spent_usd:.4f} spent in the last hour{held}; retry in "
                f"{math.ceil(refusal.verdict.retry_after_s)} s (after {at.isoformat(timespec='seconds')})")


@functools.cache
def preview_spend() -> PreviewSpend:
    """The process's preview client under the limits, built from settings on first use."""
    return PreviewSpend.from_settings(get_settings())


def settle_open_previews() -> None:
    """Re-read preview jobs whose bill is open; the autoscale beat runs it so quiet hours settle too. Never raises."""
    if not get_settings().runpod_preview_endpoint_id:
        return
    try:
        preview_spend().settle_open()
    except Exception:  # the beat's tick must run whatever the preview endpoint does
        log.exception("re-reading open preview jobs failed")
