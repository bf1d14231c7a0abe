"""Flower runs only behind basic auth, with the credentials kept off the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode

import pytest

from tests.support.processes import ROOT, free_port, stop_process_group, wait_for


def flower_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "CELERY_"))}
    return env | {"CELERY_BROKER_URL": redis_url, **extra}


def status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.parametrize("auth", [None, "", "admin", "admin:", ":secret"])
def test_flower_refuses_to_start_without_credentials(redis_url: str, auth: str | None) -> None:
    extra = {} if auth is None else {"FLOWER_BASIC_AUTH": auth}
    run = subprocess.run([sys.executable, "-m", "tasks.flower"], cwd=ROOT, env=flower_env(redis_url, **extra),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "FLOWER_BASIC_AUTH must be set" in run.stderr


@pytest.mark.slow
def test_flower_api_needs_the_password(redis_url: str) -> None:
    port = free_port()
    env = flower_env(redis_url, FLOWER_BASIC_AUTH="ops:s3cret-pass", FLOWER_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "tasks.flower"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: status(f"{base}/healthcheck") == 200, 60, what="flower to answer")
        assert status(f"{base}/api/workers") == 401
        assert status(f"{base}/api/workers", "ops:wrong") == 401
        assert status(f"{base}/api/workers", "ops:s3cret-pass") == 200
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read()
        assert b"s3cret-pass" not in cmdline  # not visible to `ps`
    finally:
        stop_process_group(proc, grace=10)
