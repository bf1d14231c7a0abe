"""Serverless preview spend in Redis, shared by every control worker: per-minute buckets and open jobs.

Keys (under the preview prefix): `spend` (minute -> USD, all requesters), `spend:requester:<name>` (the
same for one requester), `open` (job id -> OpenJob JSON: jobs whose bill is not known yet). Decisions are
tasks.spend's pure functions, run inside a WATCH transaction so two workers never both take the last
dollar or both settle one job; the clock is Redis's own.
"""

from __future__ import annotations

import redis

from tasks.limits import redis_now
from tasks.spend import (
    SPEND_WINDOW_S,
    OpenJob,
    Refusal,
    Reservation,
    held_outside_window,
    in_window,
    minute_of,
    reserve_verdict,
    spend_in_window,
)


class SpendMeter:
    """Reserve a worst case before a call, settle it to the bill after, keep it open while the bill is unknown."""

    def __init__(self, client: redis.Redis, cap_usd_per_hour: float, requester_share: float = 1.0,
                 prefix: str = "audiobook:preview:") -> None:
        self.client = client
        self.cap_usd = cap_usd_per_hour
        self.share = requester_share
        self.key = prefix + "spend"
        self.open_key = prefix + "open"
        self._requester_prefix = prefix + "spend:requester:"
        self._sweep_key = prefix + "open:sweep"

    def requester_key(self, requester: str) -> str:
        return self._requester_prefix + requester

    def reserve(self, usd: float, requester: str) -> Reservation | Refusal:
        """A Reservation counted for the cap and for `requester`, or the Refusal naming the limit that binds."""
        requester_key = self.requester_key(requester)

        def attempt(pipe: redis.client.Pipeline) -> Reservation | Refusal:
            now = redis_now(pipe)
            spent, mine = self._buckets(pipe, self.key), self._buckets(pipe, requester_key)
            jobs = self._open_jobs(pipe)
            refusal = reserve_verdict(spent, mine, jobs, now, self.cap_usd, self.share, usd, requester)
            if refusal is not None:
                return refusal
            minute = minute_of(now)
            pipe.multi()
            for key, buckets in ((self.key, spent), (requester_key, mine)):
                stale = [str(m) for m in buckets if not in_window(m, now)]
                if stale:
                    pipe.hdel(key, *stale)
                pipe.hincrbyfloat(key, str(minute), usd)
                pipe.expire(key, 2 * SPEND_WINDOW_S)
            return Reservation(minute, usd, requester)

        return self.client.transaction(attempt, self.key, requester_key, self.open_key, value_from_callable=True)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation by what was billed, in the reservation's minute."""
        with self.client.pipeline() as pipe:
            self._adjust(pipe, reservation, actual_usd)
            pipe.execute()

    def hold(self, reservation: Reservation, job_id: str, endpoint_id: str, deadline: float) -> OpenJob:
        """Keep a job's worst case counted until close(): its bill is not known yet."""
        job = OpenJob(job_id, endpoint_id, reservation.requester, reservation.minute, reservation.usd, deadline)
        self.client.hset(self.open_key, job_id, job.to_json())
        return job

    def close(self, job: OpenJob, actual_usd: float) -> bool:
        """Settle an open job to `actual_usd` once; False when another worker already did."""

        def attempt(pipe: redis.client.Pipeline) -> bool:
            if not pipe.hexists(self.open_key, job.job_id):
                return False
            pipe.multi()
            pipe.hdel(self.open_key, job.job_id)
            self._adjust(pipe, job.reservation, actual_usd)
            return True

        return self.client.transaction(attempt, self.open_key, value_from_callable=True)

    def open_jobs(self) -> list[OpenJob]:
        """Jobs whose bill is not known yet, oldest first."""
        return self._open_jobs(self.client)

    def claim_sweep(self, interval_s: float) -> bool:
        """True for one caller per `interval_s`: open jobs are re-read at most that often, by one worker."""
        return bool(self.client.set(self._sweep_key, "1", nx=True, px=max(1, int(interval_s * 1000))))

    def now(self) -> float:
        return redis_now(self.client)

    def spent_last_hour(self, requester: str | None = None) -> float:
        """USD counted against the cap (or `requester`'s share): the last hour plus older open jobs."""
        now = redis_now(self.client)
        key = self.key if requester is None else self.requester_key(requester)
        held = held_outside_window(self._open_jobs(self.client), now, requester)
        return spend_in_window(self._buckets(self.client, key), now) + held

    def _adjust(self, pipe: redis.client.Pipeline, reservation: Reservation, actual_usd: float) -> None:
        for key in (self.key, self.requester_key(reservation.requester)):
            pipe.hincrbyfloat(key, str(reservation.minute), actual_usd - reservation.usd)
            pipe.expire(key, 2 * SPEND_WINDOW_S)

    @staticmethod
    def _buckets(client: redis.Redis | redis.client.Pipeline, key: str) -> dict[int, float]:
        return {int(m): float(v) for m, v in client.hgetall(key).items()}

    def _open_jobs(self, client: redis.Redis | redis.client.Pipeline) -> list[OpenJob]:
        jobs = [OpenJob.from_json(raw) for raw in client.hvals(self.open_key)]
        return sorted(jobs, key=lambda job: (job.minute, job.job_id))
