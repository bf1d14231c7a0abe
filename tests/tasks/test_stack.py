"""`audiobook up` / `audiobook down` with real processes, run through the venv's script without activating it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from settings import Settings
from tasks.localstack import stack_processes
from tests.support.processes import ROOT, free_port
from tests.tasks.test_flower import status

pytestmark = pytest.mark.slow
AUDIOBOOK = Path(sys.executable).with_name("audiobook")  # the venv's console script; PATH does not have it


@pytest.fixture
def stack_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """A shell that never activated the venv: PATH without it, no VIRTUAL_ENV, no project variables. The voice is
    the offline one: `up` checks it in seconds, where a transformers model costs a torch import more."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith(
        ("AUDIOBOOK_", "SCALER_", "CELERY_", "FLOWER_", "RUNPOD_", "PREVIEW_"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != venv_bin)
    return env | {
        "CELERY_BROKER_URL": redis_url, "AUDIOBOOK_MODEL": "piper", "AUDIOBOOK_DEVICE": "cpu",
        "AUDIOBOOK_STORAGE_URL": str(tmp_path / "audio"), "SCALER_LOCAL_DIR": str(tmp_path / "workers"),
        "SCALER_NAME_PREFIX": f"up-{uuid.uuid4().hex[:6]}", "SCALER_MIN_WORKERS": "1", "SCALER_MAX_WORKERS": "1",
        "SCALER_INTERVAL_SECONDS": "2", "FLOWER_PORT": str(free_port()), "OMP_NUM_THREADS": "1",
        "HOME": str(tmp_path / "home"),
    }


def cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(AUDIOBOOK), *args], cwd="/", env=env, capture_output=True, text=True, timeout=timeout)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_up_serves_a_book_and_down_stops_everything(stack_env: dict[str, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    up = cli(stack_env, "up", "--run-dir", str(run_dir))
    stack = json.loads((run_dir / "stack.json").read_text()) if (run_dir / "stack.json").exists() else {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        password = re.search(r"password (\S+)  \(shown only now\)", up.stdout)
        assert password, up.stdout
        assert up.stdout.count(password[1]) == 1 and password[1] not in (run_dir / "stack.json").read_text()
        assert "offline voice" not in up.stdout and "model    piper:en_US-joe-medium" in up.stdout
        base = f"http://127.0.0.1:{stack_env['FLOWER_PORT']}"
        assert status(f"{base}/api/workers") == 401
        assert status(f"{base}/api/workers", f"admin:{password[1]}") == 200

        book = cli(stack_env, "submit", str(ROOT / "samples" / "short.md"), "--wait", "--timeout", "60")
        assert book.returncode == 0, book.stdout[-2000:] + book.stderr[-2000:]
        assert book.stdout.strip().splitlines()[-1].endswith("/book.m4b")

        marked = stack_processes(stack["stack_id"])
        commands = [_cmdline(pid) for pid in marked]
        assert any("-Q gpu-long" in c for c in commands), commands  # a worker the scaler started
        assert any("honcho" in c for c in commands) and any("-Q control,preview" in c for c in commands)

        again = cli(stack_env, "up", "--run-dir", str(run_dir))
        assert again.returncode == 2 and "already up" in again.stderr
    finally:
        down = cli(stack_env, "down", "--run-dir", str(run_dir), "--grace", "10")
    assert down.returncode == 0, down.stdout + down.stderr
    assert stack_processes(stack["stack_id"]) == [] and not (run_dir / "stack.json").exists()
    assert "stopped" in down.stdout
    assert cli(stack_env, "down", "--run-dir", str(run_dir)).stdout.startswith("down: nothing is up")


def test_without_a_hub_up_says_it_uses_the_offline_voice_and_a_failed_start_leaves_nothing(
        stack_env: dict[str, str], tmp_path: Path) -> None:
    import socket

    env = {k: v for k, v in stack_env.items() if k != "AUDIOBOOK_MODEL"} | {"HF_HUB_OFFLINE": "1",
                                                                           "SCALER_MIN_WORKERS": "0"}
    with socket.socket() as taken:  # Flower cannot bind its port
        taken.bind(("127.0.0.1", int(env["FLOWER_PORT"])))
        taken.listen()
        up = cli(env, "up", "--run-dir", str(tmp_path / "run"), "--timeout", "90")
    default = Settings.model_fields["model"].default
    said = [line for line in up.stdout.splitlines() if "offline voice" in line]
    assert said == [f"up: model {default} cannot be loaded here (no model hub reachable, not cached); "
                    "using the offline voice piper:en_US-joe-medium"], up.stdout
    assert up.returncode == 2, up.stdout + up.stderr
    assert up.stderr.startswith("audiobook: error: flower stopped while starting (OSError: [Errno 98]"), up.stderr
    assert "Traceback" not in up.stderr and not (tmp_path / "run" / "stack.json").exists()
    mine = f"SCALER_LOCAL_DIR={env['SCALER_LOCAL_DIR']}".encode()
    assert [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"AUDIOBOOK_STACK=" in _environ(p)
            and mine in _environ(p)] == []


def _environ(proc: Path) -> bytes:
    try:
        return (proc / "environ").read_bytes()
    except OSError:
        return b""


def test_one_story_for_running_it_across_readme_procfile_demo_and_cli() -> None:
    """Every `honcho start` the project tells a person about runs what `audiobook up` runs."""
    from tasks.localstack import HONCHO_COMMAND, PROCESSES

    files = [ROOT / "README.md", ROOT / "Procfile", ROOT / "docs" / "deploy.md",
             *sorted(p for p in (ROOT / "tasks").rglob("*.py") if p.name != "localstack.py")]  # it defines it
    told = {(path.name, m) for path in files for m in re.findall(r"honcho start[a-z ]*", path.read_text())}
    assert told and {m.strip() for _, m in told} == {HONCHO_COMMAND}, told
    procfile = [line.split(":")[0] for line in (ROOT / "Procfile").read_text().splitlines()
                if line and not line.startswith("#")]
    assert set(PROCESSES) < set(procfile) and "gpu" in procfile
    hints = (ROOT / "tasks" / "cli" / "book.py").read_text() + (ROOT / "tasks" / "demo.py").read_text()
    assert "make up" in hints
