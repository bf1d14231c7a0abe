"""Preview spend: the pure decisions from tables, then the Redis meter racing on real Redis."""

from __future__ import annotations

import math

import pytest
import redis

from settings import Settings, SettingsError, get_settings
from tasks.limits import Verdict
from tasks.spend import (
    HELD_RETRY_S,
    OpenJob,
    Refusal,
    Reservation,
    charge,
    held_outside_window,
    reserve_verdict,
    spend_in_window,
    spend_verdict,
)
from tasks.spend_meter import SpendMeter
from tests.preview.conftest import race

H = 3600
NOW = 10 * H  # minute 600


@pytest.mark.parametrize("spent,now,cap,reserve,held,allowed,retry", [
    ({}, NOW, 2.0, 0.5, 0.0, True, 0.0),
    ({600: 1.5}, NOW, 2.0, 0.5, 0.0, True, 0.0),                  # exactly the cap is fine
    ({600: 1.5}, NOW, 2.0, 0.6, 0.0, False, 3600.0),              # minute 600 leaves at minute 660
    ({541: 1.0, 599: 1.0}, NOW, 2.0, 0.5, 0.0, False, 60.0),      # the oldest leaves first
    ({541: 0.2, 599: 1.8}, NOW, 2.0, 0.5, 0.0, False, 3540.0),    # the oldest is not enough
    ({540: 5.0}, NOW, 2.0, 0.5, 0.0, True, 0.0),                  # an hour old: out of the window
    ({}, 0.0, 0.1, 0.5, 0.0, False, math.inf),                    # one call costs more than the cap
    ({}, 0.0, 0.0, 0.01, 0.0, False, math.inf),
    ({}, NOW, 2.0, 0.5, 1.5, True, 0.0),                          # held open jobs count like spend
    ({}, NOW, 2.0, 0.5, 1.6, False, HELD_RETRY_S),                # ...but do not age out on their own
    ({541: 1.0}, NOW, 2.0, 0.5, 1.0, False, 60.0),                # the bucket leaving frees enough
    ({541: 0.4}, NOW, 2.0, 0.5, 1.4, False, 60.0),
    ({541: 0.3}, NOW, 2.0, 0.5, 1.6, False, HELD_RETRY_S),        # not without the held jobs settling
])
def test_spend_verdict(spent: dict[int, float], now: float, cap: float, reserve: float, held: float, allowed: bool,
                       retry: float) -> None:
    assert spend_verdict(spent, now, cap, reserve, held) == Verdict(allowed, pytest.approx(retry))


def test_spend_in_window() -> None:
    assert spend_in_window({540: 5.0, 541: 1.0, 600: 0.5}, NOW) == pytest.approx(1.5)


def _job(requester: str, minute: int, usd: float = 0.1, job_id: str = "") -> OpenJob:
    return OpenJob(job_id or f"{requester}-{minute}", "ep", requester, minute, usd, deadline=0.0)


def test_held_outside_window_counts_only_jobs_older_than_the_window() -> None:
    jobs = [_job("alice", 600, 0.1), _job("alice", 500, 0.2), _job("bob", 540, 0.4)]
    assert held_outside_window(jobs, NOW) == pytest.approx(0.6)  # inside the window it is in the buckets
    assert held_outside_window(jobs, NOW, "alice") == pytest.approx(0.2)
    assert held_outside_window(jobs, NOW, "carol") == 0


# cap $1.00, share 0.5: each requester $0.50 an hour; each reservation $0.20.
@pytest.mark.parametrize("spent,alice,jobs,refused_by,spent_usd,held_usd", [
    ({}, {}, [], None, 0, 0),
    ({600: 0.3}, {600: 0.3}, [], None, 0, 0),                                     # 0.3 + 0.2 = her share
    ({600: 0.4}, {600: 0.4}, [], "share", 0.4, 0),                                # 0.6 > 0.5: her share binds
    ({600: 0.9}, {600: 0.1}, [], "cap", 0.9, 0),                                  # others used the cap
    ({600: 0.2}, {600: 0.2}, [_job("alice", 500, 0.2)], "share", 0.4, 0.2),       # her old open job still counts
    ({600: 0.2}, {600: 0.2}, [_job("bob", 500, 0.2)], None, 0, 0),                # bob's does not, for her share
    ({600: 0.6}, {}, [_job("bob", 500, 0.3)], "cap", 0.9, 0.3),                   # ...but it does for the cap
    ({600: 0.4}, {600: 0.4}, [_job("alice", 600, 0.2)], "share", 0.4, 0.2),       # open in the window: in buckets
])
def test_reserve_verdict_holds_the_cap_and_each_requesters_share(spent, alice, jobs, refused_by,  # noqa: ANN001
                                                                  spent_usd, held_usd) -> None:  # noqa: ANN001
    refusal = reserve_verdict(spent, alice, jobs, NOW, cap_usd=1.0, share=0.5, reserve_usd=0.2, requester="alice")
    if refused_by is None:
        assert refusal is None
    else:
        assert isinstance(refusal, Refusal) and refusal.limit == refused_by and not refusal.verdict.allowed
        assert refusal.limit_usd == pytest.approx(1.0 if refused_by == "cap" else 0.5)
        assert (refusal.spent_usd, refusal.held_usd) == (pytest.approx(spent_usd), pytest.approx(held_usd))


WORST = 0.096  # 600 s x $0.00016


@pytest.mark.parametrize("read,execution_ms,overdue,usd", [
    ("final", 2500, False, 2.5 * 0.00016),    # RunPod's executionTime is the bill
    ("final", 0, False, 0.0),
    ("final", None, False, WORST),            # final without executionTime: unknown, the worst case
    ("pending", None, False, None),           # still queued or running: stays open...
    ("pending", None, True, None),            # ...whatever the clock says: it can still change
    ("unreadable", None, False, None),        # no answer: open until its deadline
    ("unreadable", None, True, WORST),        # then it can no longer change: the worst case
    ("gone", None, False, WORST),             # RunPod no longer knows it
])
def test_charge(read: str, execution_ms: int | None, overdue: bool, usd: float | None) -> None:
    assert charge(read, execution_ms, overdue, WORST, 0.00016) == (None if usd is None else pytest.approx(usd))


def test_open_job_round_trips_through_json() -> None:
    job = OpenJob("job-1", "ep", "alice", 600, 0.096, 1234.5)
    assert OpenJob.from_json(job.to_json()) == job and job.reservation == Reservation(600, 0.096, "alice")


def _meter(redis_url: str, cap: float = 1.0, share: float = 1.0) -> SpendMeter:
    return SpendMeter(redis.Redis.from_url(redis_url), cap, share)


def test_meter_in_redis_never_overshoots_and_settles_to_the_bill(redis_url: str) -> None:
    meter = _meter(redis_url)
    reservations = race(10, lambda: _meter(redis_url).reserve(0.3, "alice"))
    granted = [r for r in reservations if isinstance(r, Reservation)]
    refused = [r for r in reservations if isinstance(r, Refusal)]
    assert len(granted) == 3 and len(refused) == 7
    assert all(r.limit == "cap" and 3500 < r.verdict.retry_after_s <= 3600 for r in refused)
    for reservation in granted:
        meter.settle(reservation, 0.01)  # RunPod billed far less than the worst case
    assert meter.spent_last_hour() == pytest.approx(0.03) == meter.spent_last_hour("alice")
    assert isinstance(meter.reserve(0.3, "alice"), Reservation)


def test_meter_in_redis_holds_each_requester_to_its_share_under_a_race(redis_url: str) -> None:
    outcomes = race(12, lambda: _meter(redis_url, cap=1.0, share=0.4).reserve(0.1, "alice"))
    assert sum(isinstance(o, Reservation) for o in outcomes) == 4  # $0.40 of $1.00
    assert all(o.limit == "share" for o in outcomes if isinstance(o, Refusal))
    bob = [_meter(redis_url, 1.0, 0.4).reserve(0.1, "bob") for _ in range(5)]
    assert [isinstance(o, Reservation) for o in bob] == [True] * 4 + [False]
    assert _meter(redis_url).spent_last_hour() == pytest.approx(0.8)


def test_an_open_job_is_closed_once_however_many_workers_settle_it(redis_url: str) -> None:
    meter = _meter(redis_url)
    reservation = meter.reserve(0.3, "alice")
    assert isinstance(reservation, Reservation)
    job = meter.hold(reservation, "job-1", "ep", meter.now() + 600)
    assert meter.open_jobs() == [job] and meter.spent_last_hour() == pytest.approx(0.3)  # the worst case, held
    closed = race(6, lambda: _meter(redis_url).close(job, 0.02))
    assert closed.count(True) == 1 and meter.open_jobs() == []
    assert meter.spent_last_hour() == pytest.approx(0.02) == meter.spent_last_hour("alice")


def test_sweeps_are_claimed_by_one_worker_per_interval(redis_url: str) -> None:
    claims = race(5, lambda: _meter(redis_url).claim_sweep(30))
    assert claims.count(True) == 1


@pytest.mark.parametrize("env,message", [
    ({"PREVIEW_REQUESTER_SHARE": "0"}, "PREVIEW_REQUESTER_SHARE: Input should be greater than 0"),
    ({"PREVIEW_REQUESTER_SHARE": "1.5"}, "PREVIEW_REQUESTER_SHARE: Input should be less than or equal to 1"),
    ({"PREVIEW_REQUESTER_SHARE": "half"}, "PREVIEW_REQUESTER_SHARE: Input should be a valid number"),
    ({"PREVIEW_EXECUTION_TIMEOUT_SECONDS": "5"}, "PREVIEW_EXECUTION_TIMEOUT_SECONDS: Input should be greater than 5"),
    ({"PREVIEW_EXECUTION_TIMEOUT_SECONDS": "700000"}, "PREVIEW_EXECUTION_TIMEOUT_SECONDS: Input should be less"),
    # $2 x 0.04 = $0.08 an hour cannot hold one 600 s x $0.00016 = $0.096 preview.
    ({"RUNPOD_PREVIEW_ENDPOINT_ID": "ep", "PREVIEW_REQUESTER_SHARE": "0.04"},
     r"PREVIEW_REQUESTER_SHARE x PREVIEW_MAX_USD_PER_HOUR \(\$0.08 an hour\) must hold one preview's worst case, "
     r"PREVIEW_EXECUTION_TIMEOUT_SECONDS x PREVIEW_USD_PER_SECOND \(\$0.096\)"),
])
def test_bad_spend_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                              message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=message):
            get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("env", [
    {"PREVIEW_REQUESTER_SHARE": "0.04"},  # no endpoint: previews run locally, spend settings unused
    {"RUNPOD_PREVIEW_ENDPOINT_ID": "ep", "PREVIEW_REQUESTER_SHARE": "0.04", "PREVIEW_EXECUTION_TIMEOUT_SECONDS": "60"},
    {"RUNPOD_PREVIEW_ENDPOINT_ID": "ep", "PREVIEW_MAX_USD_PER_HOUR": "0"},  # endpoint previews off
])
def test_spend_settings_that_can_work_are_accepted(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().preview_requester_share > 0
