"""docs/deploy.md on one machine: a loopback stand-in for every service the walk-through sets up.

`python -m tests.fakes.rehearsal [--dir var/rehearsal]` starts Redis with TLS and a password on this machine's
routable address (step 1), an S3 server (moto, step 3), RunPod's GraphQL API with a network volume and a
template (step 5), a serverless endpoint (step 6) and the scaler's metrics server (step 8, standing in for
the control worker), writes `step-N.env` with what each step adds to the configuration, and waits for Ctrl-C.
Load the files in order and run `audiobook doctor` after each: that step's rows turn green.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tasks.processes import free_port, stop_process_group, wait_for
from tests.fakes.runpod_api import FakeRunPod
from tests.fakes.runpod_serverless import FakeServerless
from tests.support.tls_redis import TlsRedisServer

#: The doctor's rows each step of docs/deploy.md turns green (step 2, Sentinel or RabbitMQ, and step 4, the
#: images, have no stand-in here: the same broker rows check a sentinel:// or amqps:// URL; a build checks images).
STEP_CHECKS = {
    1: ("broker", "result backend", "visibility timeout"),
    3: ("storage",),
    5: ("runpod key", "gpu types", "network volume", "pods reach the broker"),
    6: ("preview endpoint",),
    7: ("flower auth",),
    8: ("metrics",),
}
ENDPOINT_ID = "preview-ep"
VOLUME_ID = "volweights1"
TEMPLATE_ID = "tpl-private-registry"


class Rehearsal:
    """The stand-ins, started together; `steps` holds each step's variables."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.redis = TlsRedisServer(directory / "redis", password=f"redis-{uuid.uuid4().hex[:12]}")
        self.runpod = FakeRunPod(api_key=f"rp-{uuid.uuid4().hex}")
        self.serverless = FakeServerless(lambda job: {"audio_b64": ""}, endpoint_id=ENDPOINT_ID,
                                         api_key=self.runpod.api_key)
        self.bucket = f"books-{uuid.uuid4().hex[:8]}"
        self.s3 = None
        self.metrics: subprocess.Popen | None = None
        self.metrics_port = free_port()
        self.steps: dict[int, dict[str, str]] = {}

    def start(self) -> Rehearsal:
        """Start every stand-in; if one fails, stop the ones already started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Rehearsal:
        import boto3
        from moto.server import ThreadedMotoServer

        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        s3_port = free_port()
        self.s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
        self.s3.start()
        s3_url = f"http://127.0.0.1:{s3_port}"
        boto3.client("s3", endpoint_url=s3_url, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket=self.bucket)
        self.runpod.start()
        self.runpod.add_network_volume(VOLUME_ID, "EU-RO-1", name="weights", size=40)
        self.runpod.add_template(TEMPLATE_ID)
        self.runpod.add_endpoint(ENDPOINT_ID, workersMax=2, idleTimeout=5)
        self.serverless.start()
        # The control worker's metrics server, reading the scaler's state where the control plane keeps it.
        self.metrics = subprocess.Popen(
            [sys.executable, "-c", "import os, sys, time, redis; from scaler import metrics; from scaler.state import "
                                   "StateStore; metrics.serve(int(sys.argv[1]), StateStore(redis.Redis.from_url("
                                   "os.environ['STATE_REDIS_URL']), 'audiobook-gpu')); time.sleep(86400)",
             str(self.metrics_port)], env=os.environ | {"STATE_REDIS_URL": self.redis.url(db=0)},  # not in `ps`
            start_new_session=True)
        wait_for(lambda: _answers(self.metrics_port), 30, what="the metrics server")
        self.steps = {
            1: {"CELERY_BROKER_URL": self.redis.url(db=0), "CELERY_RESULT_BACKEND": self.redis.url(db=1)},
            3: {"AUDIOBOOK_STORAGE_URL": f"s3://{self.bucket}/books", "AWS_ENDPOINT_URL": s3_url,
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"},
            5: {"SCALER_PROVIDER": "runpod", "RUNPOD_API_KEY": self.runpod.api_key,
                "RUNPOD_API_BASE_URL": self.runpod.url, "RUNPOD_WORKER_IMAGE": "ghcr.io/example/audiobook-worker:1.0",
                "RUNPOD_TEMPLATE_ID": TEMPLATE_ID, "RUNPOD_GPU_TYPES": "NVIDIA RTX A4000,NVIDIA GeForce RTX 3090",
                "RUNPOD_DATA_CENTERS": "EU-RO-1", "RUNPOD_NETWORK_VOLUME_ID": VOLUME_ID,
                "SCALER_MAX_WORKERS": "10", "SCALER_MAX_USD_PER_HOUR": "5"},
            6: {"RUNPOD_PREVIEW_ENDPOINT_ID": ENDPOINT_ID, "RUNPOD_ENDPOINT_BASE_URL": self.serverless.url},
            7: {"FLOWER_BASIC_AUTH": f"ops:{uuid.uuid4().hex[:16]}", "FLOWER_PORT": str(free_port())},
            8: {"SCALER_METRICS_PORT": str(self.metrics_port)},
        }
        return self

    def env_through(self, step: int) -> dict[str, str]:
        """Every variable of the steps up to and including `step`."""
        env: dict[str, str] = {}
        for number, values in sorted(self.steps.items()):
            if number <= step:
                env |= values
        return env

    def write_env_files(self) -> list[Path]:
        paths = []
        for number, values in sorted(self.steps.items()):
            path = self.directory / f"step-{number}.env"
            path.write_text("".join(f"{name}='{value}'\n" for name, value in values.items()))
            path.chmod(0o600)
            paths.append(path)
        return paths

    def stop(self) -> None:
        if self.metrics is not None:
            stop_process_group(self.metrics, grace=5)
            self.metrics = None
        self.serverless.stop()
        self.runpod.stop()
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None
        self.redis.stop()


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where the env files go (default: a new temp dir)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    rehearsal = Rehearsal((args.dir or Path(tempfile.mkdtemp(prefix="rehearsal-"))).resolve()).start()
    try:
        for path in rehearsal.write_env_files():
            print(f"set -a; . {path}; set +a; .venv/bin/audiobook doctor")
        print("stand-ins are up; Ctrl-C stops them", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        rehearsal.stop()


if __name__ == "__main__":
    sys.exit(main())
