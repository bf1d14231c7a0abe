"""Jobs whose bill is left open: held at the worst case, re-read through the SDK, settled or charged.

The meter is real Redis, the endpoint the unmodified SDK against the loopback fake; only the deadline of an
open job is set by hand (a real one is PREVIEW_EXECUTION_TIMEOUT_SECONDS away).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
import runpod

from tasks.endpoint import PreviewEndpoint
from tasks.errors import PreviewFailed, PreviewRefused
from tasks.preview_spend import PreviewSpend
from tasks.spend import Reservation
from tasks.spend_meter import SpendMeter
from tests.fakes.runpod_serverless import FakeServerless
from tests.support.processes import wait_for

HELLO = {"text": "Hello there.", "voice": None, "format": "wav"}
PRICE = 0.01  # USD per second, so cents read as seconds
EXECUTION_TIMEOUT_S = 30.0
WORST = EXECUTION_TIMEOUT_S * PRICE


@pytest.fixture
def spend(fake_endpoint: FakeServerless, redis_url: str,
          monkeypatch: pytest.MonkeyPatch) -> Callable[..., PreviewSpend]:
    monkeypatch.setattr(runpod, "endpoint_url_base", fake_endpoint.url)

    def build(cap: float = 10.0, share: float = 1.0, timeout_s: float = 1.0) -> PreviewSpend:
        endpoint = PreviewEndpoint(fake_endpoint.endpoint_id, fake_endpoint.api_key, timeout_s, 0, EXECUTION_TIMEOUT_S)
        meter = SpendMeter(redis.Redis.from_url(redis_url), cap, share)
        return PreviewSpend(meter, endpoint, PRICE, EXECUTION_TIMEOUT_S)

    return build


def _sweep(spend: PreviewSpend) -> int:
    spend.meter.client.delete("audiobook:preview:open:sweep")  # the next sweep may run now
    return spend.settle_open()


def test_a_job_that_completes_after_we_gave_up_is_settled_to_its_bill(spend, fake_endpoint) -> None:  # noqa: ANN001
    previews = spend()
    fake_endpoint.inject("late", seconds=1.5, execution_ms=1700)
    with pytest.raises(PreviewFailed, match="no result within PREVIEW_TIMEOUT_SECONDS=1; the cancel did not get"):
        previews.call(HELLO, "alice")
    [job] = previews.meter.open_jobs()
    assert (job.requester, job.reserved_usd) == ("alice", pytest.approx(WORST))
    assert previews.meter.spent_last_hour("alice") == pytest.approx(WORST)  # held at the worst case

    assert _sweep(previews) == 0  # still running: stays open
    wait_for(lambda: fake_endpoint.jobs[job.job_id].status == "COMPLETED", 30, what="the late job to complete")
    assert _sweep(previews) == 1 and previews.meter.open_jobs() == []
    assert previews.meter.spent_last_hour() == pytest.approx(1.7 * PRICE) == previews.meter.spent_last_hour("alice")


def test_a_job_whose_status_is_lost_is_charged_the_worst_case_at_its_deadline(spend, fake_endpoint) -> None:  # noqa: ANN001
    previews = spend()
    fake_endpoint.inject("lost")
    with pytest.raises(PreviewFailed):
        previews.call(HELLO, "alice")
    [job] = previews.meter.open_jobs()
    assert job.deadline == pytest.approx(previews.meter.now() + EXECUTION_TIMEOUT_S, abs=5)
    assert _sweep(previews) == 0  # no answer, before its deadline: it may still be billing

    previews.meter.hold(job.reservation, job.job_id, job.endpoint_id, previews.meter.now() - 1)
    assert _sweep(previews) == 1 and previews.meter.open_jobs() == []
    assert previews.meter.spent_last_hour() == pytest.approx(WORST)  # charged, for good


def test_a_job_runpod_no_longer_knows_is_charged_and_a_pending_one_cancelled(spend, fake_endpoint) -> None:  # noqa: ANN001
    previews = spend()
    meter = previews.meter
    gone = meter.reserve(WORST, "alice")
    assert isinstance(gone, Reservation)
    meter.hold(gone, "no-such-job", fake_endpoint.endpoint_id, meter.now() + 600)
    fake_endpoint.inject("slow", seconds=20)
    running = previews.endpoint.endpoint.run({"input": HELLO})  # e.g. a worker died while waiting for it
    wait_for(lambda: fake_endpoint.jobs[running.job_id].status == "IN_PROGRESS", 30, what="the job to start")
    pending = meter.reserve(WORST, "bob")
    assert isinstance(pending, Reservation)
    meter.hold(pending, running.job_id, fake_endpoint.endpoint_id, meter.now() + 600)

    assert _sweep(previews) == 1  # 404: it can no longer change; the running one is cancelled, still open
    assert [job.job_id for job in meter.open_jobs()] == [running.job_id]
    assert meter.spent_last_hour("alice") == pytest.approx(WORST)
    assert fake_endpoint.jobs[running.job_id].status == "CANCELLED" and fake_endpoint.calls["cancel"] == 1
    assert _sweep(previews) == 1 and meter.open_jobs() == []
    assert meter.spent_last_hour("bob") < WORST / 2  # what it ran until the cancel


def test_a_job_cancelled_at_our_timeout_is_settled_at_once(spend, fake_endpoint) -> None:  # noqa: ANN001
    previews = spend()
    fake_endpoint.inject("slow", seconds=20)
    with pytest.raises(PreviewFailed, match="job cancelled"):
        previews.call(HELLO, "bob")
    assert previews.meter.open_jobs() == []
    assert 0.9 * PRICE < previews.meter.spent_last_hour("bob") < WORST / 2  # about a second of execution


def test_open_jobs_hold_the_budget_until_they_are_settled(spend, fake_endpoint) -> None:  # noqa: ANN001
    previews = spend(cap=2 * WORST + 0.05, share=0.5)  # room for one worst case per requester
    fake_endpoint.inject("late", seconds=1.5, execution_ms=1500)
    with pytest.raises(PreviewFailed):
        previews.call(HELLO, "alice")
    with pytest.raises(PreviewRefused, match=r"spend share of requester 'alice' .* = \$0\.3250 an hour\) reached: "
                                             r"\$0\.3000 spent in the last hour \(\$0\.3000 of it held for jobs "
                                             r"whose bill is not known yet\)"):
        previews.call(HELLO, "alice")
    [job] = previews.meter.open_jobs()
    wait_for(lambda: fake_endpoint.jobs[job.job_id].status == "COMPLETED", 30, what="the late job to complete")
    assert previews.call(HELLO, "bob")[1] < WORST  # bob is not held back by alice's open job
    assert previews.meter.open_jobs() == [job]
    _sweep(previews)
    outcome, cost = previews.call(HELLO, "alice")  # settled to $0.015: her share has room again
    assert outcome.job_id in fake_endpoint.jobs and 0 < cost < WORST
