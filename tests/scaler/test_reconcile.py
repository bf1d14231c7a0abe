"""`reconcile` and the crash-loop breaker, pure, from tables."""

from __future__ import annotations

import pytest

from scaler.breaker import Breaker, after_outcomes, resumed
from scaler.errors import ProviderUnavailable
from scaler.health import WorkerHealth
from scaler.policy import PolicyConfig
from scaler.providers.base import Instance
from scaler.reconcile import Reads, lookups_needed, reconcile
from scaler.state import WorkerRecord
from scaler.workers import CeleryWorker

NOW = 1_800_000_000.0
ME = "mine"
CONFIG = PolicyConfig(boot_timeout_s=900)


def record(name: str, pod: str | None = "p1", **kw) -> WorkerRecord:  # noqa: ANN003
    return WorkerRecord(name=name, status=kw.pop("status", "active"), instance_id=pod, created_at=kw.pop("created_at",
                        NOW - 100), usd_per_hour=0.34, **kw)


def pod(pod_id: str, name: str, deployment: str | None = ME, status: str = "running") -> Instance:
    return Instance(id=pod_id, name=name, usd_per_hour=0.34, status=status, deployment=deployment)  # type: ignore[arg-type]


def reads(listing=(), lookups=None, celery=None, health=None) -> Reads:  # noqa: ANN001
    return Reads(listing=None if listing is None else tuple(listing), lookups=lookups or {},
                 celery={} if celery is None else celery, health=health or {})


def answering(name: str, busy: bool = False, consuming: bool = True) -> dict[str, CeleryWorker]:
    return {f"gpu-{name}@h": CeleryWorker(f"gpu-{name}@h", consuming=consuming, active=int(busy), reserved=0)}


@pytest.mark.parametrize(("listed_before", "lookup", "forgotten", "omitted", "complete"), [
    (True, None, True, False, True),  # confirmed gone
    (True, pod("p1", "w"), False, True, False),  # the listing lied: hold
    (False, pod("p1", "w"), False, False, True),  # never listed yet: counted as it is
    (True, ProviderUnavailable("get_pod: no answer"), False, False, False),  # unknown: hold
])
def test_a_known_pod_missing_from_the_listing(listed_before: bool, lookup, forgotten: bool, omitted: bool,  # noqa: ANN001
                                              complete: bool) -> None:
    saved = {"w": record("w", listed_at=NOW - 50 if listed_before else None)}
    seen = reconcile(saved, reads(lookups={"p1": lookup}), CONFIG, ME, NOW)
    assert (seen.forgotten == ("w",)) is forgotten
    assert (seen.omitted == ("w",)) is omitted
    assert seen.complete is complete
    assert saved["w"].status == "active" and saved["w"].listed_at == (NOW - 50 if listed_before else None)  # pure


def test_a_pod_we_terminated_goes_once_unlisted_without_a_lookup() -> None:
    saved = {"w": record("w", status="terminating", terminated_at=NOW - 30, listed_at=NOW - 500)}
    assert lookups_needed(saved, [], ME) == []
    assert reconcile(saved, reads(), CONFIG, ME, NOW).forgotten == ("w",)


def test_a_reservation_is_bound_by_name_and_dropped_only_after_the_boot_timeout() -> None:
    saved = {"w": record("w", pod=None, status="requested")}
    seen = reconcile(saved, reads(listing=[pod("p9", "w")]), CONFIG, ME, NOW)
    assert seen.records["w"].instance_id == "p9" and seen.changed == ("w",) and seen.adopted == ()
    old = {"w": record("w", pod=None, status="requested", created_at=NOW - 900)}
    assert reconcile(old, reads(), CONFIG, ME, NOW).forgotten == ("w",)
    assert reconcile(old, reads(listing=None), CONFIG, ME, NOW).forgotten == ()  # no listing: keep it


@pytest.mark.parametrize(("deployment", "lookup", "outcome"), [
    (ME, pod("p5", "x"), "adopted"), (ME, None, "ignored"), (ME, ProviderUnavailable("hang"), "held"),
    ("other", pod("p5", "x"), "foreign"), (None, pod("p5", "x"), "foreign"),
])
def test_unknown_pods_with_the_prefix(deployment, lookup, outcome: str) -> None:  # noqa: ANN001
    listing = [pod("p5", "x", deployment)]
    asked = lookups_needed({}, listing, ME)
    seen = reconcile({}, reads(listing=listing, lookups={"p5": lookup} if asked else {}), CONFIG, ME, NOW)
    assert (asked == ["p5"]) is (deployment == ME)
    assert (seen.adopted == ("x",)) is (outcome == "adopted")
    assert (seen.foreign == ("x",)) is (outcome == "foreign")
    assert seen.complete is (outcome != "held")
    counted = [w.name for w in seen.workers]
    assert counted == (["x"] if outcome in ("adopted", "held") else [])


@pytest.mark.parametrize(("status", "busy", "state"), [
    ("starting", True, "busy"), ("starting", False, "idle"), ("exited", True, "busy"), ("running", False, "idle"),
])
def test_a_live_celery_answer_outranks_the_provider(status: str, busy: bool, state: str) -> None:
    saved = {"w": record("w", created_at=NOW - 5000, listed_at=NOW - 4000)}
    seen = reconcile(saved, reads(listing=[pod("p1", "w", status=status)], celery=answering("w", busy)), CONFIG, ME,
                     NOW)
    [worker] = seen.workers
    assert worker.state == state and worker.busy is busy and worker.exited is False
    assert seen.records["w"].last_seen_at == NOW


def test_outcomes_count_once_each_for_the_breaker() -> None:
    health = {"gpu-a@h": WorkerHealth(True, None, NOW), "gpu-b@h": WorkerHealth(False, "OSError: no model", NOW)}
    saved = {"a": record("a", pod="pa"), "b": record("b", pod="pb"), "c": record("c", pod="pc", created_at=NOW - 900)}
    listing = [pod("pa", "a"), pod("pb", "b"), pod("pc", "c")]
    celery = answering("a") | answering("b", consuming=False)
    seen = reconcile(saved, reads(listing=listing, celery=celery, health=health), CONFIG, ME, NOW)
    assert seen.ready == ("a",)
    assert dict(seen.failed) == {"b": "OSError: no model", "c": "c did not register within 900s"}
    again = reconcile(seen.records, reads(listing=listing, celery=celery, health=health), CONFIG, ME, NOW)
    assert again.ready == () and again.failed == ()  # counted once
    assert {w.name: w.error for w in again.workers}["b"] == "OSError: no model"


@pytest.mark.parametrize(("start", "ready", "failures", "count", "open_"), [
    (Breaker(), 0, ["e1"], 1, False),
    (Breaker(), 0, ["e1", "e2", "e3"], 3, True),
    (Breaker(failed_in_a_row=2), 1, ["e3"], 1, False),  # a ready worker closes it first
    (Breaker(failed_in_a_row=5, resumes_at=NOW - 1), 0, ["e6"], 6, True),  # half open: one failure reopens it
    (Breaker(failed_in_a_row=5, resumes_at=NOW + 9), 1, [], 0, False),
])
def test_the_breaker(start: Breaker, ready: int, failures: list[str], count: int, open_: bool) -> None:
    after = after_outcomes(start, ready, failures, threshold=3, cooloff_s=600, now=NOW)
    assert after.failed_in_a_row == count and after.is_open(NOW) is open_
    if open_:
        assert after.resumes_at == NOW + 600 and after.last_error == failures[-1]
    assert not resumed(after).is_open(NOW) and resumed(after).failed_in_a_row == 0
