"""The pipeline stage beside the model: order, bounded backlog, errors that surface and never hang."""

from __future__ import annotations

import threading

import pytest

from synth.pipeline import Stage, StageStopped


class Boom(Exception):
    pass


def stage_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def test_items_run_in_order_on_one_thread() -> None:
    seen: list[tuple[int, str]] = []
    with Stage("order", backlog=2) as stage:
        for i in range(20):
            stage.submit(lambda i: seen.append((i, threading.current_thread().name)), i)
    assert [i for i, _ in seen] == list(range(20))
    assert len({name for _, name in seen}) == 1 and seen[0][1] != threading.current_thread().name
    assert stage_threads("order") == []


def test_backlog_bounds_what_waits() -> None:
    gate = threading.Event()
    stage = Stage("bounded", backlog=2)
    stage.submit(gate.wait)
    stage.submit(lambda: None)
    submitted = threading.Event()
    thread = threading.Thread(target=lambda: (stage.submit(lambda: None), submitted.set()))
    thread.start()
    assert not submitted.wait(0.3)  # the third waits while two are unfinished
    gate.set()
    thread.join(10)
    assert submitted.is_set()
    stage.join()
    stage.close(cancel=False)


def test_an_error_reaches_the_submitter_and_later_items_are_skipped() -> None:
    ran: list[int] = []

    def fail() -> None:
        raise Boom("disk full")

    with pytest.raises(Boom, match="disk full"):
        with Stage("errors", backlog=1) as stage:
            stage.submit(fail)
            for i in range(5):  # blocks on the failed item and raises its error here
                stage.submit(ran.append, i)
    assert ran == [] and stage.failed
    assert stage_threads("errors") == []


def test_items_after_a_failure_do_not_run() -> None:
    ran: list[int] = []
    gate = threading.Event()
    stage = Stage("skip", backlog=5)

    def fail() -> None:
        gate.wait()
        raise Boom("upload failed")

    stage.submit(fail)
    stage.submit(ran.append, 1)  # queued behind the failure: e.g. a state.json past a lost part
    gate.set()
    with pytest.raises(Boom):
        stage.join()
    stage.close(cancel=False)
    assert ran == [] and stage.failed


@pytest.mark.parametrize("finish,expected", [(False, [0]), (True, [0, 1, 2])])
def test_leaving_by_an_error_cancels_or_finishes_as_asked(finish: bool, expected: list[int]) -> None:
    ran: list[int] = []
    started, gate = threading.Event(), threading.Event()

    def slow(i: int) -> None:
        started.set()
        gate.wait()
        ran.append(i)

    with pytest.raises(Boom):
        with Stage("exit", backlog=5, finish_on_error=finish) as stage:
            for i in range(3):
                stage.submit(slow, i)
            assert started.wait(10)  # the first item is running, the others wait
            threading.Timer(0.2, gate.set).start()
            raise Boom("model crashed")
    assert ran == expected
    assert stage.failed is (not finish)
    assert stage_threads("exit") == []


def test_stopped_items_say_why() -> None:
    stage = Stage("why", backlog=3)
    gate = threading.Event()

    def fail() -> None:
        gate.wait()
        raise Boom("first")

    stage.submit(fail)
    stage.submit(lambda: None)
    gate.set()
    with pytest.raises(Boom):
        stage.join()
    with pytest.raises(StageStopped, match="why: skipped after an earlier failure"):
        stage.join()
    stage.close(cancel=True)
