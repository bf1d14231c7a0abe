"""Random JSON at the chapter task: every payload is either accepted or refused as InvalidPayload."""

from __future__ import annotations

import pytest
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import InvalidPayload
from tasks.payloads import ChapterRequest, validate

FIELDS = ["book_id", "chapter_id", "text", "voice", "title", "format", "seed", "metadata"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
base = st.fixed_dictionaries({"book_id": st.just("fuzz"), "chapter_id": st.just("c"),
                              "text": st.text(min_size=1, max_size=120)})
payloads = st.builds(lambda b, extra: {**b, **extra}, base,
                     st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=3))


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_validation_never_raises_anything_else(kwargs: dict) -> None:
    try:
        request = validate(ChapterRequest, "audiobook.synthesize_chapter", (), kwargs, max_chars=1000)
    except InvalidPayload as exc:
        assert str(exc).startswith("audiobook.synthesize_chapter: ")
    else:
        assert request.text.strip() and set(kwargs) <= set(FIELDS)


@pytest.mark.slow
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(payloads, min_size=25, max_size=25))
def test_random_payloads_never_crash_or_wedge_a_worker(batch: list[dict], start_worker, client_app: Celery) -> None:
    worker = start_worker("gpu-long")
    results = [client_app.send_task("audiobook.synthesize_chapter", kwargs=k, queue="gpu-long") for k in batch]
    for result in results:
        try:
            value = result.get(timeout=120)
        except Exception as exc:  # noqa: BLE001 - the error type is what is checked
            assert type(exc).__name__ in ("InvalidPayload", "TextError"), repr(exc)
        else:
            assert value["duration_s"] > 0
        assert (result.retries or 0) == 0
    assert worker.proc is not None and worker.proc.poll() is None
    assert client_app.control.ping(destination=[worker.hostname], timeout=2)
