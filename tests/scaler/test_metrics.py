"""Metrics read from the shared state at each scrape; the shipped Grafana dashboard and Prometheus rules use only
metrics that exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scaler.metrics import StateCollector, registry_for
from scaler.policy import PolicyConfig
from scaler.state import StateStore, tick_counts
from tests.scaler.memworld import MemWorld
from tests.support.processes import ROOT, free_port, wait_for

DASHBOARD = ROOT / "docs" / "grafana" / "audiobook-scaler.json"
RULES = ROOT / "docs" / "prometheus" / "audiobook-scaler-rules.yml"
AUDIOBOOK = str(Path(sys.executable).parent / "audiobook")


def _exposition(record, counters) -> dict[str, list[dict[str, str]]]:  # noqa: ANN001
    """Sample name -> the label sets it is exported with."""
    registry = CollectorRegistry()
    registry.register(StateCollector(lambda: (record, counters)))
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return found


def _full_record():  # noqa: ANN202
    """A real tick with every part filled in: workers, a daily budget, the breaker."""
    m = MemWorld(PolicyConfig(max_workers=3, max_usd_per_hour=1.0, daily_budget_usd=20.0))
    m.queue(30)
    m.cluster.oldest_queued_at = m.clock() - 120
    record = m.tick()
    counts = tick_counts(record)
    counts.update(["provider_errors:list", "read_failures:broker", "actions:terminated", "ticks:held"])
    return record, dict(counts)


def test_the_collector_exports_the_latest_tick_and_the_headroom() -> None:
    record, counters = _full_record()
    found = _exposition(record, counters)
    values = {(name, tuple(sorted(labels.items()))) for name, sets in found.items() for labels in sets}
    assert ("audiobook_scaler_headroom", (("cap", "max_workers"),)) in values
    registry = CollectorRegistry()
    registry.register(StateCollector(lambda: (record, counters)))
    sample = registry.get_sample_value
    assert sample("audiobook_scaler_waiting") == 30 and sample("audiobook_scaler_target") == 3
    assert len(record.executed.created) == 2  # two at 0.34; a third (0.34 or 0.43) would pass 1.00 USD/h
    assert sample("audiobook_scaler_headroom", {"cap": "max_workers"}) == 1
    assert sample("audiobook_scaler_headroom", {"cap": "max_usd_per_hour"}) == pytest.approx(0.32)
    assert sample("audiobook_scaler_headroom", {"cap": "daily_budget"}) == pytest.approx(20.0)
    assert sample("audiobook_scaler_oldest_waiting_seconds") == pytest.approx(120.0)
    assert sample("audiobook_scaler_bound", {"cap": "max_usd_per_hour"}) == 1
    assert sample("audiobook_scaler_bound", {"cap": "crash_loop"}) == 0
    assert sample("audiobook_scaler_crash_loop") == 0 and sample("audiobook_scaler_state_up") == 1
    assert sample("audiobook_scaler_ticks_total", {"outcome": "ok"}) == 1


def test_an_unreadable_state_says_so() -> None:
    def fail():  # noqa: ANN202
        raise redis.ConnectionError("connection refused")

    registry = CollectorRegistry()
    registry.register(StateCollector(fail))
    assert registry.get_sample_value("audiobook_scaler_state_up") == 0
    assert registry.get_sample_value("audiobook_scaler_waiting") is None  # nothing made up


def _promql_selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, {label: value or regex}) for every audiobook_* metric an expression selects."""
    found = []
    for match in re.finditer(r"\b(audiobook_[a-z0-9_]+)\b(\{([^}]*)\})?", expr):
        labels = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', match.group(3) or ""))
        found.append((match.group(1), labels))
    return found


def test_the_dashboard_and_the_alert_rules_use_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rules = yaml.safe_load(RULES.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    exprs += [rule["expr"] for rule in alerts.values()]
    assert {"AudiobookScalerCapBindingLong", "AudiobookScalerCrashLoop", "AudiobookQueueOld"} <= set(alerts)
    assert all(rule.get("for") and rule["annotations"]["summary"] for rule in alerts.values())
    exported = _exposition(*_full_record())
    used = [selector for expr in exprs for selector in _promql_selectors(expr)]
    assert len({name for name, _ in used}) >= 15
    for name, labels in used:
        assert name in exported, f"{name} is used but not exported"
        for label, value in labels.items():
            values = {labels_of.get(label) for labels_of in exported[name]}
            assert values - {None}, f"{name} has no label {label}"
            for alternative in value.split("|"):
                assert alternative in values, f"{name}{{{label}={alternative!r}}} is never exported"


@pytest.mark.slow
def test_any_control_process_serves_the_latest_tick_whoever_ran_it(start_worker, worker_env, client_app, enqueue,
                                                                    redis_url) -> None:
    """The control worker's pool child serves /metrics; a tick run elsewhere (the CLI) is what it exports."""
    port = free_port()
    env = worker_env | {"SCALER_METRICS_PORT": str(port), "SCALER_NAME_PREFIX": "test-metrics"}
    # Dry run: its ticks must not start GPU workers that outlive the test and take other tests' chapters.
    start_worker(queues="control", name="control", concurrency=2, env=env | {"SCALER_DRY_RUN": "1"})
    client_app.send_task("audiobook.autoscale", queue="control")  # its first tick starts the server

    def scrape() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            return ""

    wait_for(lambda: "audiobook_scaler_waiting 0.0" in scrape(), 60, 0.3, "the control worker's metrics")
    enqueue(12)
    done = subprocess.run([AUDIOBOOK, "scaler", "tick", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = scrape()
    assert "audiobook_scaler_waiting 12.0" in text and "audiobook_scaler_target 3.0" in text
    assert 'audiobook_scaler_ticks_total{outcome="dry_run"} 2.0' in text  # the worker's tick and the CLI's
    assert re.search(r"audiobook_scaler_oldest_waiting_seconds \d", text)
    assert 'audiobook_scaler_headroom{cap="max_workers"} 50.0' in text


def test_the_registry_reads_a_store(redis_client) -> None:
    store = StateStore(redis_client, "test-registry")
    registry = registry_for(store)
    assert registry.get_sample_value("audiobook_scaler_state_up") == 1
    assert registry.get_sample_value("audiobook_scaler_waiting") is None  # no tick yet
