"""Workers whose model cannot load, as a new user's default setup without a hub: real local worker processes,
a real control worker, the real CLI. Creating stops after K failed workers in a row, and every place people look
says why: the decision record, `audiobook scaler status`, `audiobook status`. An operator's resume starts again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scaler.providers.local import LocalProvider
from tests.scaler.conftest import DEPLOYMENT
from tests.support.processes import ROOT

AUDIOBOOK = str(Path(sys.executable).parent / "audiobook")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUDIOBOOK, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_workers_that_cannot_load_the_model_stop_creating_and_say_why(
        worker_env, local_provider, start_worker, make_scaler, tmp_path) -> None:
    env = worker_env | {"SCALER_NAME_PREFIX": "test-local"}
    broken = env | {"AUDIOBOOK_MODEL": str(tmp_path / "no-such-model")}  # no hub, no such directory
    directory = Path(env["SCALER_LOCAL_DIR"])
    provider = LocalProvider(directory, "test-local", env=broken, cwd=ROOT, stop_wait_s=15, deployment=DEPLOYMENT)
    scaler = make_scaler(provider, max_workers=1, boot_timeout_s=300, inspect_timeout_s=1.0, crash_loop_workers=2,
                         crash_loop_cooloff_s=3600)
    start_worker(queues="control", name="control")
    book = tmp_path / "book.md"
    book.write_text("# One\n\nThe first chapter.\n\n# Two\n\nThe second chapter.\n")
    submitted = _cli(env, "submit", str(book))
    assert submitted.returncode == 0, submitted.stderr
    book_id = submitted.stdout.strip()

    deadline = time.monotonic() + 300
    quiet = 0
    while quiet < 8:  # until both workers are gone and eight more ticks created nothing
        assert time.monotonic() < deadline, "the workers never failed"
        record = scaler.tick()
        started = sorted(p.stem for p in directory.glob("*.log"))
        assert len(started) <= 2, f"{len(started)} workers started: creating went on through a crash loop"
        quiet = quiet + 1 if len(started) == 2 and not provider.list_instances() else 0
        time.sleep(1.0)

    assert record.health.crash_loop and record.decision.bound_by == "crash_loop"
    assert record.health.failed_in_a_row == 2 and "cannot load model config" in record.health.last_error
    assert record.health.healthy == 0
    status = _cli(env, "scaler", "status")
    assert status.returncode == 0, status.stderr
    assert "CRASH LOOP" in status.stdout and "cannot load model config" in status.stdout
    assert "audiobook scaler resume" in status.stdout
    book_status = _cli(env | {"COLUMNS": "400"}, "status", book_id)
    assert "waiting: no healthy workers: cannot load model config" in book_status.stdout, book_status.stdout
    assert "running" not in book_status.stdout

    resumed = _cli(env, "scaler", "resume")
    assert resumed.returncode == 0 and "creating resumes" in resumed.stdout, resumed.stderr
    record = scaler.tick()
    assert not record.health.crash_loop and len(record.executed.created) == 1
