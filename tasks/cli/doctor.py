"""`audiobook doctor`: check every deployment step (docs/deploy.md); exit 1 when any check fails."""

from __future__ import annotations

import argparse
import os

from tasks.doctor import CheckResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check broker, backend, storage, RunPod, Flower and timeouts; a fix for each failure",
        description="Check every step of docs/deploy.md against the live services. Exit status 1 when a "
                    "check fails.")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from tasks.doctor import format_table, to_json

    results = _results()
    print(to_json(results) if args.json else format_table(results))
    return 1 if any(r.status == "fail" for r in results) else 0


def _results() -> list[CheckResult]:
    from settings import SettingsError, get_settings
    from tasks.doctor import Context, failed, run_checks

    try:
        settings = get_settings()
    except SettingsError as exc:
        return [failed("settings", str(exc), "fix the variable it names (README, Configuration)")]
    from tasks import app

    # One quick attempt per check: a worker retries for ever, the doctor reports.
    app.conf.redis_socket_connect_timeout = app.conf.redis_socket_timeout = 5
    app.conf.result_backend_always_retry = False
    app.conf.result_backend_transport_options = dict(app.conf.result_backend_transport_options or {}) | {
        "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}}
    settings_row = CheckResult("settings", "pass", "every variable parses and agrees with the others")
    return [settings_row, *run_checks(Context(settings=settings, app=app, environ=dict(os.environ)))]
