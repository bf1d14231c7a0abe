"""The README's main command in its short mode: a real book through the whole local system."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from synth.output import read_chapter_marks
from tests.support.processes import ROOT, wait_for

pytestmark = pytest.mark.slow


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `marker`: everything the demo started."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


@pytest.fixture
def demo_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "SCALER_", "CELERY_", "FLOWER_"))}
    return env | {"CELERY_BROKER_URL": redis_url, "AUDIOBOOK_STORAGE_URL": str(tmp_path / "audio"),
                  "SCALER_LOCAL_DIR": str(tmp_path / "workers"), "SCALER_NAME_PREFIX": f"demo-{uuid.uuid4().hex[:6]}",
                  "DEMO_TEST_MARKER": uuid.uuid4().hex}


def test_short_demo_makes_a_chaptered_m4b_and_scales_back(demo_env: dict[str, str], tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    run = subprocess.run([sys.executable, "-m", "tasks.demo", "--short", "--timeout", "300", "--summary-json",
                          str(summary_path)], cwd=ROOT, env=demo_env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert "Audiobook ready" in run.stdout and summary["flower"]["url"] in run.stdout
    assert "Traceback" not in run.stdout + run.stderr and "Exception ignored" not in run.stderr

    book = Path(summary["book_uri"].removeprefix("file://"))
    assert book.suffix == ".m4b" and book.stat().st_size > 0
    _, marks = read_chapter_marks(book)
    assert [m.title for m in marks] == [c["title"] for c in summary["chapters"]] == ["Morning", "Evening"]
    for mark, chapter in zip(marks, summary["chapters"], strict=True):
        assert abs(mark.start_ms / 1000 - chapter["start_s"]) <= 0.010
    assert summary["pool_max"] >= 1 and summary["pool_final"] == 0  # 0 -> N -> 0
    assert summary["pool_timeline"][0][1] == 0
    assert processes_with(demo_env["DEMO_TEST_MARKER"]) == []


def test_ctrl_c_leaves_nothing_running(demo_env: dict[str, str]) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "tasks.demo", "--short"], cwd=ROOT, env=demo_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    assert demo.stdout is not None
    for line in demo.stdout:
        lines.append(line)
        if "submitted" in line:
            break
    assert any("submitted" in line for line in lines), "".join(lines)
    os.killpg(demo.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 130, out[-2000:]
    wait_for(lambda: processes_with(demo_env["DEMO_TEST_MARKER"]) == [], 30, what="demo processes to end")
