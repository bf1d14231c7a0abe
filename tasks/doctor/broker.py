"""Broker, result backend, the broker as pods reach it, and the visibility timeout against the time limit."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from urllib.parse import urlsplit

from settings import redact_url
from tasks.doctor import CheckResult, Context, failed, passed, skipped

#: Seconds the visibility timeout must exceed the chapter time limit by: a chapter is reserved before it
#: starts and acknowledged after its result is stored.
VISIBILITY_MARGIN_S = 300
_TLS_SCHEMES = ("rediss", "amqps")


def connection_fix(error: str, variable: str) -> str:
    """The likely fix for a failed connection, from the client's words."""
    lowered = error.lower()
    if any(mark in lowered for mark in ("auth", "password", "access_refused", "noperm", "login")):
        return f"the password (or user) in {variable} is wrong or missing"
    if any(mark in lowered for mark in ("ssl", "certificate", "tls", "ssl_cert_reqs")):
        return (f"TLS: a rediss:// URL in {variable} needs ?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem "
                "(the CA that signed the server's certificate); see docs/deploy.md, step 1")
    if "master_name" in lowered or ("master" in lowered and "sentinel" in lowered):
        return "the sentinels do not know AUDIOBOOK_REDIS_MASTER_NAME, or none of them answers"
    return (f"start the service, or fix the host and port in {variable}; from a VM, open the port in its "
            "firewall (docs/deploy.md, step 1)")


def check_broker(context: Context) -> CheckResult:
    url = context.settings.broker_url.get_secret_value()
    try:
        with context.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=10)
            transport = connection.transport.driver_type
    except Exception as exc:  # noqa: BLE001 - kombu raises many types; any is "not reachable"
        return failed("broker", f"{redact_url(url)}: {type(exc).__name__}: {exc}",
                      connection_fix(str(exc), "CELERY_BROKER_URL"))
    return passed("broker", f"{redact_url(url)} answers ({transport})")


def check_backend(context: Context) -> CheckResult:
    """Write, read back and delete one result through Celery's own backend class, as workers use it."""
    url = context.settings.backend_url
    probe = f"doctor-{uuid.uuid4().hex}"
    try:
        backend = context.app.backend
        backend.store_result(probe, {"doctor": True}, "SUCCESS")
        meta = backend.get_task_meta(probe)
        backend.forget(probe)
    except Exception as exc:  # noqa: BLE001 - any backend error fails the check
        variable = "CELERY_RESULT_BACKEND" if context.settings.result_backend else "CELERY_BROKER_URL"
        return failed("result backend", f"{redact_url(url)}: {type(exc).__name__}: {exc}",
                      connection_fix(str(exc), variable))
    if meta.get("status") != "SUCCESS" or meta.get("result") != {"doctor": True}:
        return failed("result backend", f"{redact_url(url)} did not return what was written ({meta.get('status')})",
                      "the backend drops results: check its eviction policy (maxmemory-policy noeviction)")
    return passed("result backend", f"{redact_url(url)}: a result written, read back and deleted")


def check_pod_broker(context: Context) -> CheckResult:
    """Pods reach the broker over the internet: a routable host, a password, TLS."""
    s = context.settings
    if not context.on_runpod:
        return skipped("pods reach the broker", "SCALER_PROVIDER is local: workers run on this machine")
    url = (s.runpod_worker_broker_url or s.broker_url).get_secret_value()
    variable = "RUNPOD_WORKER_BROKER_URL" if s.runpod_worker_broker_url else "CELERY_BROKER_URL"
    parts = urlsplit(url.split(";")[0])
    problems, fixes = [], []
    loopback = _loopback(parts.hostname or "")
    if loopback:
        problems.append(loopback)
        fixes.append(f"set {variable} to an address pods reach (a public name or IP of the broker)")
    if not parts.password:
        problems.append("no password")
        fixes.append("require a password on the broker (Redis `requirepass`, a RabbitMQ user) and put it in the URL")
    if parts.scheme.lower() not in (*_TLS_SCHEMES, "sentinel"):
        problems.append(f"{parts.scheme}:// is not encrypted")
        fixes.append("use rediss:// (or amqps://): the password and every chapter's text cross the internet")
    if problems:
        return failed("pods reach the broker", f"{redact_url(url)}: {'; '.join(problems)}", "; ".join(fixes))
    if url != s.broker_url.get_secret_value():
        try:
            with context.app.connection_for_write(url) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=10)
        except Exception as exc:  # noqa: BLE001
            return failed("pods reach the broker", f"{redact_url(url)}: {type(exc).__name__}: {exc}",
                          connection_fix(str(exc), variable))
    return passed("pods reach the broker", f"{redact_url(url)}: routable host, password, TLS")


def _loopback(host: str) -> str | None:
    """Why `host` is unreachable from a pod (this machine's loopback), None if it is not."""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError):
            return f"host {host!r} does not resolve"
    if any(address.is_loopback or address.is_unspecified for address in addresses):
        return f"host {host!r} is this machine's loopback"
    return None


def check_visibility(context: Context) -> CheckResult:
    conf = context.app.conf
    limit = int(conf.task_time_limit)
    scheme = urlsplit(context.settings.broker_url.get_secret_value().split(";")[0]).scheme.lower()
    if scheme.startswith("amqp") or scheme == "pyamqp":
        return skipped("visibility timeout", f"RabbitMQ has none; its consumer_timeout (default 1800 s) must exceed "
                                             f"the chapter time limit {limit} s: rabbitmq.conf `consumer_timeout = "
                                             f"{(limit + VISIBILITY_MARGIN_S) * 1000}` (docs/deploy.md, step 2)")
    timeouts = {name: int((options or {}).get("visibility_timeout", 3600)) for name, options in
                (("broker", conf.broker_transport_options), ("backend", conf.result_backend_transport_options))}
    need = limit + VISIBILITY_MARGIN_S
    if timeouts["broker"] < need:
        return failed("visibility timeout",
                      f"{timeouts['broker']} s leaves under {VISIBILITY_MARGIN_S} s over the chapter time limit "
                      f"{limit} s: a chapter near its limit is delivered to a second worker",
                      f"set AUDIOBOOK_VISIBILITY_TIMEOUT_S to at least {need} "
                      "(or lower AUDIOBOOK_CHAPTER_TIME_LIMIT_S)")
    return passed("visibility timeout",
                  f"{timeouts['broker']} s > chapter time limit {limit} s + {VISIBILITY_MARGIN_S} s")
