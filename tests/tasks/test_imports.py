"""Processes that never synthesize must not import torch or transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT


@pytest.mark.parametrize("module", ["tasks", "tasks.chapter", "tasks.book", "celeryconfig", "synth.chapter",
                                    "tasks.cli", "tasks.consumer", "tasks.reaper", "tasks.lifecycle",
                                    "tasks.cli.deadletter", "tasks.cli.lifecycle"])
def test_control_plane_imports_stay_light(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_json_only_pickle_refused() -> None:
    import celeryconfig

    assert celeryconfig.accept_content == ["json"] and celeryconfig.task_serializer == "json"
    assert celeryconfig.result_accept_content == ["json"]


def test_visibility_timeout_exceeds_time_limit() -> None:
    import celeryconfig

    assert celeryconfig.broker_transport_options["visibility_timeout"] > celeryconfig.task_time_limit
    assert celeryconfig.task_soft_time_limit < celeryconfig.task_time_limit
    # The model loads before a pool child reports UP: Celery's 4 s default would kill it in a loop.
    assert celeryconfig.worker_proc_alive_timeout >= 300


def test_results_keep_no_arguments_and_writes_retry() -> None:
    import celeryconfig

    assert celeryconfig.result_extended is False  # a chapter's text is not kept with its result
    assert celeryconfig.result_backend_always_retry is True
    assert celeryconfig.worker_consumer == "tasks.consumer:GuardedConsumer"
    assert celeryconfig.beat_schedule["reap"]["task"] == "audiobook.reap"
