"""Shared fixtures: real Redis, real worker subprocesses, a tiny random VITS on disk, a loopback S3."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.brokers import Vhost, delete_queues
from tests.support.processes import FAST_RECOVERY, CeleryBeat, CeleryWorker, RabbitServer, RedisServer, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """Claim one Redis DB number on the machine's Redis for this test session (concurrent runs differ)."""
    admin = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    try:
        admin.ping()
    except redis.ConnectionError as exc:  # a missing service fails the run; it is never skipped
        raise RuntimeError(f"the tests need Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}") from exc
    token = uuid.uuid4().hex
    for db in range(1, 16):
        if admin.set(f"audiobook-tests:db:{db}", token, nx=True, ex=3 * 3600):
            break
    else:
        raise RuntimeError("no free Redis DB number for this test session (1-15 are claimed)")
    yield db
    if admin.get(f"audiobook-tests:db:{db}") == token.encode():
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()
        admin.delete(f"audiobook-tests:db:{db}")


@pytest.fixture
def redis_url(redis_db: int) -> str:
    """A clean Redis DB for this test."""
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db).flushdb()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture(scope="session")
def amqp_vhost() -> Iterator[Vhost]:
    """A RabbitMQ vhost of this test session on the machine's RabbitMQ (parallel sessions never share queues)."""
    vhost = Vhost.create(f"audiobook-test-{uuid.uuid4().hex[:10]}")
    yield vhost
    vhost.delete()


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """Which broker the test runs against: `redis` unless the test is marked with tests.support.brokers's
    BOTH_BROKERS (or parametrizes `broker` indirectly itself)."""
    return getattr(request, "param", "redis")


@pytest.fixture
def broker_url(broker: str, redis_url: str, request: pytest.FixtureRequest) -> str:
    """The broker of this test: the test Redis DB, or this session's RabbitMQ vhost emptied of our queues.
    Results go to the test Redis either way (chords need a backend that supports them)."""
    if broker == "redis":
        return redis_url
    vhost: Vhost = request.getfixturevalue("amqp_vhost")
    delete_queues(vhost.url)
    return vhost.url


@pytest.fixture
def short_timeout_rabbit(tmp_path: Path) -> Iterator[RabbitServer]:
    """A private RabbitMQ node on free ports whose consumer_timeout is 5 s (checked every second); it is being
    started when the test begins (`wait_ready()` before use, so workers can start alongside), always stopped."""
    server = RabbitServer(tmp_path / "rabbit", consumer_timeout_ms=5000, tick_s=1).start(wait=False)
    yield server
    server.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free port, with AOF on, for tests that kill the broker."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def volatile_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server without persistence: killed and started again, it comes back empty."""
    server = RedisServer(tmp_path / "volatile-redis", appendonly=False).start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth.engines.random_vits import build_random_vits

    return build_random_vits(tmp_path_factory.mktemp("models") / "tiny-vits")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path):  # noqa: ANN201
    from synth.engines import load_engine

    return load_engine(str(tiny_model_dir), "cpu")


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    path = tmp_path / "audio"
    path.mkdir()
    return path


@pytest.fixture
def worker_env(broker_url: str, redis_url: str, tiny_model_dir: Path, audio_dir: Path,
               tmp_path: Path) -> dict[str, str]:
    """Environment of a worker subprocess: test broker and Redis, tiny model, local storage, one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "SCALER_", "RUNPOD_",
                                                                      "PREVIEW_", "CELERY_"))}
    return env | {
        "CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": redis_url,
        "AUDIOBOOK_MODEL": str(tiny_model_dir), "AUDIOBOOK_DEVICE": "cpu",
        "AUDIOBOOK_STORAGE_URL": audio_dir.as_uri(), "SCALER_LOCAL_DIR": str(tmp_path / "workers"),
        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path),
    }


@pytest.fixture
def client_app(broker_url: str, redis_url: str) -> Iterator[Celery]:
    """What another service has: a bare Celery app on the same broker, sending tasks by name."""
    app = Celery("client", broker=broker_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    broker_connection_retry_on_startup=True)
    yield app
    app.close()


@pytest.fixture
def start_worker(worker_env: dict[str, str], client_app: Celery, tmp_path: Path):  # noqa: ANN201
    """Factory: start a real `celery -A tasks worker` subprocess; all are stopped at teardown."""
    started: list[CeleryWorker] = []

    def start(queues: str = "gpu-long", name: str | None = None, concurrency: int = 1, pool: str = "prefork",
              env: dict[str, str] | None = None, wait: bool = True) -> CeleryWorker:
        hostname = f"{name or 'gpu' + str(len(started))}@{uuid.uuid4().hex[:6]}"
        worker = CeleryWorker(worker_env | (env or {}), queues, hostname, concurrency, pool, tmp_path)
        started.append(worker.start())
        if wait:
            worker.wait_ready(client_app)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_beat(worker_env: dict[str, str], tmp_path: Path):  # noqa: ANN201
    """Factory: start `celery -A tasks beat` (autoscale and reaper passes); stopped at teardown."""
    started: list[CeleryBeat] = []

    def start(env: dict[str, str] | None = None) -> CeleryBeat:
        directory = tmp_path / f"beat{len(started)}"
        directory.mkdir()
        beat = CeleryBeat(worker_env | (env or {}), directory)
        started.append(beat.start())
        return beat

    yield start
    for beat in started:
        beat.stop()


@pytest.fixture
def recovery_plane(start_worker, start_beat):  # noqa: ANN001, ANN201
    """A control worker and beat with FAST_RECOVERY (not waited for); returns that environment for GPU workers."""
    control = start_worker("control", name="control", concurrency=2, env=FAST_RECOVERY, wait=False)
    start_beat(FAST_RECOVERY)
    return control


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server on loopback (moto's server mode), not in-process patching."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
