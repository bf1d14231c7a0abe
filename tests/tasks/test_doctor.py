"""`audiobook doctor` walked through docs/deploy.md on loopback stand-ins (tests/fakes/rehearsal.py): Redis with
TLS and a password on a routable address, S3 (moto), RunPod's GraphQL and serverless APIs (the fakes), the
scaler's metrics. Each step turns its rows green; each broken step turns its row red, with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes.rehearsal import STEP_CHECKS, Rehearsal
from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.slow
ALL_CHECKS = {"settings", *(name for names in STEP_CHECKS.values() for name in names)}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    stand_ins = Rehearsal(tmp_path_factory.mktemp("rehearsal")).start()
    yield stand_ins
    stand_ins.stop()


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """A shell with none of the project's variables (and a HOME without ~/.runpod)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUDIOBOOK_", "SCALER_", "RUNPOD_", "PREVIEW_", "CELERY_", "FLOWER_", "AWS_"))}
    return env | {"HOME": str(home)}


@pytest.fixture
def production_env(base_env: dict[str, str], rehearsal: Rehearsal) -> dict[str, str]:
    return base_env | rehearsal.env_through(max(STEP_CHECKS))


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict], str]:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", "doctor", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    rows = {row["check"]: row for row in json.loads(run.stdout)}
    return run.returncode, rows, run.stdout + run.stderr


def test_each_step_of_the_walk_through_turns_its_rows_green(base_env: dict[str, str], rehearsal: Rehearsal) -> None:
    done: set[str] = {"settings"}
    for step, checks in sorted(STEP_CHECKS.items()):
        code, rows, output = doctor(base_env | rehearsal.env_through(step))
        assert set(rows) == ALL_CHECKS, output
        done |= set(checks)
        assert {n: rows[n]["status"] for n in done} == {n: "pass" for n in done}, (step, output)
        assert code == (1 if any(r["status"] == "fail" for r in rows.values()) else 0), output
    assert code == 0, output
    assert "rediss://" in rows["broker"]["detail"] and "NVIDIA RTX A4000 0.340" in rows["gpu types"]["detail"]
    assert "EU-RO-1" in rows["network volume"]["detail"] and "max workers 2" in rows["preview endpoint"]["detail"]
    for secret in (rehearsal.redis.password, rehearsal.runpod.api_key, rehearsal.steps[7]["FLOWER_BASIC_AUTH"]):
        assert secret.split(":")[-1] not in output


def test_the_table_names_each_failure_and_its_fix(production_env: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", "doctor"], cwd=ROOT, text=True, capture_output=True,
                         env=production_env | {"FLOWER_BASIC_AUTH": ""}, timeout=180)
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("flower auth")]
    assert "FAIL" in lines[row] and "fix:" in lines[row + 1] and "FLOWER_BASIC_AUTH=user:password" in lines[row + 1]
    assert lines[-1] == f"{len(ALL_CHECKS)} checks: 1 failed"


class _OpenFlower(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def flower_without_auth() -> Iterator[int]:
    """A dashboard answering anyone, as a Flower started without `python -m tasks.flower` would."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenFlower)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# Independent breakages share a run (one doctor run costs seconds, mostly `import runpod`); each group lists
# every check it must turn red with a word of its fix, and nothing else may be red.
BROKEN = {
    "wrong-values": (lambda t, f: {
        "CELERY_BROKER_URL": t.url(password="wrong-password"),
        "RUNPOD_WORKER_BROKER_URL": "redis://127.0.0.1:6379/0",
        "AUDIOBOOK_VISIBILITY_TIMEOUT_S": "10860",
        "AUDIOBOOK_STORAGE_URL": "s3://no-such-bucket-here/books",
        "RUNPOD_GPU_TYPES": "NVIDIA Imaginary GPU",
        "RUNPOD_NETWORK_VOLUME_ID": "volmissing",
        "RUNPOD_PREVIEW_ENDPOINT_ID": "other-ep",
        "FLOWER_BASIC_AUTH": "admin",
    }, {"broker": "password", "pods reach the broker": "an address pods reach", "visibility timeout": "at least 11100",
        "storage": "create the bucket", "gpu types": "runpod.get_gpus()", "network volume": "RUNPOD_NETWORK_VOLUME_ID",
        "preview endpoint": "RUNPOD_PREVIEW_ENDPOINT_ID", "flower auth": "FLOWER_BASIC_AUTH=user:password"}),
    "wrong-shapes": (lambda t, f: {
        "CELERY_RESULT_BACKEND": t.url(db=1).split("?")[0],
        "AUDIOBOOK_STORAGE_URL": "./var/audio",
        "SCALER_MAX_USD_PER_HOUR": "0.1",
        "RUNPOD_DATA_CENTERS": "US-KS-2",
    }, {"result backend": "ssl_cert_reqs", "storage": "s3://bucket/prefix",
        "gpu types": "raise SCALER_MAX_USD_PER_HOUR", "network volume": "RUNPOD_DATA_CENTERS=EU-RO-1"}),
    "unreachable": (lambda t, f: {
        "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{free_port()}/0",
        "RUNPOD_INTERRUPTIBLE": "1", "RUNPOD_BID_USD_PER_HOUR": "0.01",
        "FLOWER_PORT": str(f),
    }, {"result backend": "start the service", "gpu types": "minimum bid", "flower auth": "python -m tasks.flower"}),
    "wrong-key": (lambda t, f: {"RUNPOD_API_KEY": "rp-wrong-key", "SCALER_METRICS_PORT": str(free_port())},
                  {"runpod key": "RUNPOD_API_KEY", "gpu types": "RUNPOD_API_KEY", "network volume": "RUNPOD_API_KEY",
                   "preview endpoint": "RUNPOD_API_KEY", "metrics": "start it"}),
}


@pytest.mark.parametrize("group", list(BROKEN))
def test_each_broken_step_fails_its_check_with_the_fix(production_env, rehearsal: Rehearsal, flower_without_auth,
                                                       group: str) -> None:
    broken, expected = BROKEN[group]
    code, rows, output = doctor(production_env | broken(rehearsal.redis, flower_without_auth))
    assert code == 1, output
    assert {n for n, row in rows.items() if row["status"] == "fail"} == set(expected), output
    for check, fix in expected.items():
        assert fix in rows[check]["fix"], rows[check]


def test_settings_that_do_not_parse_fail_alone(production_env) -> None:
    code, rows, _ = doctor(production_env | {"AUDIOBOOK_VISIBILITY_TIMEOUT_S": "600"})
    assert code == 1 and list(rows) == ["settings"] and "AUDIOBOOK_VISIBILITY_TIMEOUT_S" in rows["settings"]["detail"]
