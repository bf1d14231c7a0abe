"""Prometheus: the scaler's metrics served where SCALER_METRICS_PORT says (by the control worker)."""

from __future__ import annotations

import urllib.request

from tasks.doctor import CheckResult, Context, failed, passed, skipped


def check_metrics(context: Context) -> CheckResult:
    port = context.settings.scaler_metrics_port
    if port is None:
        return skipped("metrics", "SCALER_METRICS_PORT not set: the scaler serves no metrics (docs/deploy.md, step 8)")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body = response.read().decode(errors="replace")
    except OSError as exc:
        return failed("metrics", f"{url}: {exc}", "the control worker serves them once its first tick ran: start it "
                                                  "(docs/deploy.md, step 7), here on this machine")
    if "audiobook_scaler_ticks" not in body:
        return failed("metrics", f"{url} answers, but not with the scaler's metrics",
                      "another program holds SCALER_METRICS_PORT: pick a free port")
    return passed("metrics", f"{url} serves the scaler's metrics; Flower's are at its /metrics")
