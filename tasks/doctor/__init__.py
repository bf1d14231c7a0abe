"""`audiobook doctor`: every step of docs/deploy.md checked against the live services, with a fix per failure.

A check is a function of a Context returning one CheckResult (pass, fail or skip, a detail, and for a failure
the fix). Checks only read, except storage and the result backend, which write, read back and delete one probe
object. Details never hold a secret: they are scrubbed of every secret the settings hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from celery import Celery

    from settings import Settings

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """What the checks look at: the settings, the Celery app built from them, and the environment (Flower's
    own variables are not settings)."""

    settings: Settings
    app: Celery
    environ: Mapping[str, str]

    @property
    def on_runpod(self) -> bool:
        return self.settings.scaler_provider == "runpod"

    def secrets(self) -> list[str]:
        from urllib.parse import urlsplit

        s = self.settings
        values = [s.runpod_api_key.get_secret_value()] if s.runpod_api_key else []
        if s.flower_basic_auth:
            values += [pair.split(":", 1)[-1] for pair in s.flower_basic_auth.get_secret_value().split(",")]
        for url in (s.broker_url, s.result_backend, s.runpod_worker_broker_url):
            if url:
                values += [p for part in url.get_secret_value().split(";") if (p := urlsplit(part).password)]
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


Check = Callable[[Context], CheckResult]


def passed(check: str, detail: str) -> CheckResult:
    return CheckResult(check, "pass", detail)


def failed(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, "fail", detail, fix)


def skipped(check: str, detail: str) -> CheckResult:
    return CheckResult(check, "skip", detail)


def all_checks() -> list[tuple[str, Check]]:
    """Every check, in the order docs/deploy.md takes the steps."""
    from tasks.doctor import broker, flower, metrics, runpod, storage

    return [("broker", broker.check_broker), ("result backend", broker.check_backend),
            ("pods reach the broker", broker.check_pod_broker), ("visibility timeout", broker.check_visibility),
            ("storage", storage.check_storage), ("runpod key", runpod.check_key),
            ("gpu types", runpod.check_gpu_types), ("network volume", runpod.check_network_volume),
            ("preview endpoint", runpod.check_endpoint), ("flower auth", flower.check_flower),
            ("metrics", metrics.check_metrics)]


def run_checks(context: Context, checks: list[tuple[str, Check]] | None = None) -> list[CheckResult]:
    """Run every check; one that raises fails with its error, and the others still run."""
    results = []
    for name, check in checks or all_checks():
        try:
            result = check(context)
        except Exception as exc:  # noqa: BLE001 - a check's own bug or an unforeseen error is a failed check
            result = failed(name, f"{type(exc).__name__}: {exc}", "see docs/deploy.md for this step")
        results.append(_scrub(result, context.secrets()))
    return results


def _scrub(result: CheckResult, secrets: list[str]) -> CheckResult:
    detail, fix = result.detail, result.fix
    for secret in secrets:
        detail, fix = detail.replace(secret, "***"), fix.replace(secret, "***")
    return CheckResult(result.check, result.status, detail[:400], fix)


def format_table(results: list[CheckResult]) -> str:
    """One row per check; each failure's fix on the line under it."""
    width = max(len(r.check) for r in results)
    lines = [f"{'CHECK'.ljust(width)}  RESULT  DETAIL"]
    for result in results:
        lines.append(f"{result.check.ljust(width)}  {result.status.upper():<6}  {result.detail}")
        if result.status == "fail":
            lines.append(f"{''.ljust(width)}  fix:    {result.fix}")
    failures = sum(r.status == "fail" for r in results)
    lines.append(f"{len(results)} checks: {failures} failed" if failures else f"{len(results)} checks: all passed")
    return "\n".join(lines)


def to_json(results: list[CheckResult]) -> str:
    return json.dumps([r.to_json() for r in results], indent=2)
