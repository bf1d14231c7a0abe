"""`audiobook simulate`: JSON and the table from a small trace file, the PNG, and one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from scaler.sim.peers import PEER_NAMES
from scaler.sim.traces import HOUR, Trace, poisson_books, save_trace
from tasks.cli import main


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    chapters = poisson_books(lambda t: 10.0, 10.0, 0.0, 2 * HOUR, random.Random(5))
    path = tmp_path / "small.csv"
    save_trace(Trace("small", 2 * HOUR, tuple(chapters)), path)
    return path


def test_json_has_one_row_per_policy_and_the_plot_is_written(trace_file: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "out" / "small.png"
    assert main(["simulate", "--trace", str(trace_file), "--seed", "3", "--json", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trace"] == "small" and report["seed"] == 3 and report["plot"] == str(plot)
    assert [row["policy"] for row in report["policies"]] == list(PEER_NAMES)
    for row in report["policies"]:
        assert row["cap_violations"] == 0 and row["chapters_done"] == row["chapters"] == report["chapters"]
        assert row["cost_ratio"] >= 1.0
        assert {"billed_gpu_h", "busy_gpu_h", "cost_usd", "wait_p50_s", "wait_p95_s", "wait_max_s", "makespan_s",
                "max_pods", "max_usd_per_hour", "creates"} <= row.keys()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000


def test_the_table_names_every_policy(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--trace", str(trace_file), "--policies", "table,backlog", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "billed/busy" in out and "cap viol." in out and "table" in out and "backlog" in out
    assert "keda" not in out and "plot:" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--trace", "monday"], "unknown trace 'monday'"),
    (["--seed", "x"], "--seed must be an integer, not 'x'"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--interval", "0"], "--interval must be >= 1"),
    (["--boot-seconds", "nan"], "--boot-seconds must be a finite number"),
    (["--capacity-error-rate", "1.5"], "--capacity-error-rate must be between 0 and 0.99"),
    (["--policies", "table,hpa"], "unknown policy hpa"),
])
def test_bad_input_is_one_line_and_exit_status_2(args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--no-plot", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("audiobook: error: ") and message in err
