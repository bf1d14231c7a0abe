"""Flower: credentials set, and a running Flower refusing anonymous API calls."""

from __future__ import annotations

from tasks.doctor import CheckResult, Context, failed, passed
from tasks.flower import auth_problem
from tasks.processes import http_status


def check_flower(context: Context) -> CheckResult:
    secret = context.settings.flower_basic_auth
    problem = auth_problem(secret.get_secret_value() if secret else "")
    if problem:
        return failed("flower auth", problem, "set FLOWER_BASIC_AUTH=user:password in the control plane's "
                                              "environment; `python -m tasks.flower` refuses to start without it")
    address = context.environ.get("FLOWER_ADDRESS", "127.0.0.1")
    url = f"http://{address}:{context.environ.get('FLOWER_PORT', '5555')}/"  # the dashboard; /api/* is shut either way
    status = http_status(url)
    if status == 200:
        return failed("flower auth", f"{url} answers without credentials",
                      "run Flower through `python -m tasks.flower` (the Procfile's `flower`), which sets basic auth")
    if status in (401, 403):
        return passed("flower auth", f"set; {url} refuses anonymous requests")
    return passed("flower auth", f"set (no Flower answers at {url} from here)")
