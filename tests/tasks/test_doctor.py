"""`audiobook doctor` against a production-shaped setup on loopback: Redis with TLS and a password on a routable
address, S3 (moto), RunPod's GraphQL and serverless APIs (the fakes). Green when right; each check red, with
its fix, when its step is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from tests.fakes.runpod_api import FakeRunPod
from tests.fakes.runpod_serverless import FakeServerless
from tests.support.processes import ROOT, free_port
from tests.support.tls_redis import TlsRedisServer

pytestmark = pytest.mark.slow
PASSWORD = "tls-redis-s3cret"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(tmp_path_factory.mktemp("tls-redis"), PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runpod_fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeRunPod, FakeServerless]]:
    key = f"rp-{uuid.uuid4().hex}"
    graphql = FakeRunPod(api_key=key).start()
    graphql.add_network_volume("volweights1", "EU-RO-1", name="weights", size=40)
    graphql.add_endpoint("preview-ep", workersMax=2, idleTimeout=5)
    with FakeServerless(lambda job: {"audio_b64": ""}, endpoint_id="preview-ep", api_key=key) as serverless:
        yield graphql, serverless
    graphql.stop()


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"books-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def production_env(tls_redis: TlsRedisServer, runpod_fakes, bucket: str, s3_endpoint: str,
                   tmp_path: Path) -> dict[str, str]:
    """docs/deploy.md's configuration, every value pointing at a loopback stand-in."""
    graphql, serverless = runpod_fakes
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUDIOBOOK_", "SCALER_", "RUNPOD_", "PREVIEW_", "CELERY_", "FLOWER_", "AWS_"))}
    return env | {
        "HOME": str(home), "CELERY_BROKER_URL": tls_redis.url(db=0), "CELERY_RESULT_BACKEND": tls_redis.url(db=1),
        "AUDIOBOOK_STORAGE_URL": f"s3://{bucket}/books", "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
        "SCALER_PROVIDER": "runpod", "SCALER_MAX_USD_PER_HOUR": "5", "RUNPOD_API_KEY": graphql.api_key,
        "RUNPOD_API_BASE_URL": graphql.url, "RUNPOD_ENDPOINT_BASE_URL": serverless.url,
        "RUNPOD_NETWORK_VOLUME_ID": "volweights1", "RUNPOD_DATA_CENTERS": "EU-RO-1",
        "RUNPOD_PREVIEW_ENDPOINT_ID": "preview-ep", "FLOWER_BASIC_AUTH": "ops:flower-s3cret",
        "FLOWER_PORT": str(free_port()),
    }


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict], str]:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", "doctor", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    rows = {row["check"]: row for row in json.loads(run.stdout)}
    return run.returncode, rows, run.stdout + run.stderr


def test_a_right_deployment_is_green(production_env: dict[str, str], runpod_fakes) -> None:
    code, rows, output = doctor(production_env)
    assert {name: row["status"] for name, row in rows.items()} == {name: "pass" for name in rows}, output
    assert code == 0
    assert set(rows) == {"settings", "broker", "result backend", "pods reach the broker", "visibility timeout",
                         "storage", "runpod key", "gpu types", "network volume", "preview endpoint", "flower auth"}
    assert "rediss://" in rows["broker"]["detail"] and "NVIDIA RTX A4000 0.340" in rows["gpu types"]["detail"]
    assert "EU-RO-1" in rows["network volume"]["detail"] and "max workers 2" in rows["preview endpoint"]["detail"]
    for secret in (PASSWORD, runpod_fakes[0].api_key, "flower-s3cret"):
        assert secret not in output


def test_the_table_names_each_failure_and_its_fix(production_env: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", "doctor"], cwd=ROOT, text=True, capture_output=True,
                         env=production_env | {"FLOWER_BASIC_AUTH": ""}, timeout=180)
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    [row] = [i for i, line in enumerate(lines) if line.startswith("flower auth")]
    assert "FAIL" in lines[row] and "fix:" in lines[row + 1] and "FLOWER_BASIC_AUTH=user:password" in lines[row + 1]
    assert lines[-1] == "11 checks: 1 failed"


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
    "wrong-key": (lambda t, f: {"RUNPOD_API_KEY": "rp-wrong-key"},
                  {"runpod key": "RUNPOD_API_KEY", "gpu types": "RUNPOD_API_KEY", "network volume": "RUNPOD_API_KEY",
                   "preview endpoint": "RUNPOD_API_KEY"}),
}


@pytest.mark.parametrize("group", list(BROKEN))
def test_each_broken_step_fails_its_check_with_the_fix(production_env, tls_redis, flower_without_auth,
                                                       group: str) -> None:
    broken, expected = BROKEN[group]
    code, rows, output = doctor(production_env | broken(tls_redis, flower_without_auth))
    assert code == 1, output
    assert {n for n, row in rows.items() if row["status"] == "fail"} == set(expected), output
    for check, fix in expected.items():
        assert fix in rows[check]["fix"], rows[check]


def test_settings_that_do_not_parse_fail_alone(production_env) -> None:
    code, rows, _ = doctor(production_env | {"AUDIOBOOK_VISIBILITY_TIMEOUT_S": "600"})
    assert code == 1 and list(rows) == ["settings"] and "AUDIOBOOK_VISIBILITY_TIMEOUT_S" in rows["settings"]["detail"]
