"""The GPU check runs where only torch, transformers and numpy are installed, and prints one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.processes import ROOT

# What a bare GPU machine lacks: the check's own code (bench/, synth/) must not import any of it
# (settings.py needs pydantic-settings, so it is hidden too).
ABSENT = ["soundfile", "celery", "kombu", "redis", "pydantic_settings", "num2words", "boto3", "runpod", "piper",
          "settings"]
RUN = f"""
import builtins, runpy, sys
real_import = builtins.__import__
def guarded(name, globals=None, *args, **kwargs):
    # only the project's own imports: transformers probes for what is installed and imports it itself
    caller = (globals or {{}}).get("__name__", "")
    if caller.split(".")[0] in ("synth", "bench", "__main__") and name.split(".")[0] in {ABSENT!r}:
        raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    return real_import(name, globals, *args, **kwargs)
builtins.__import__ = guarded
sys.argv = ["bench/gpu_check.py", "--device", "cpu", "--quick", "--prices", "Fast GPU=2.5"]
runpy.run_path("bench/gpu_check.py", run_name="__main__")
"""


def test_gpu_check_runs_with_torch_transformers_and_numpy_only() -> None:
    env = os.environ | {"RUNPOD_GPU_TYPES": "Fast GPU, NVIDIA RTX A4000", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    report = json.loads(lines[0])
    assert report["device"].startswith("cpu") and report["dtype"] == "float32"
    assert set(report["rows"]) == {"1", "2", "4"} and report["rows"]["1"]["padding"] == 0.0
    assert all(r["audio_s_per_s"] > 0 for r in report["rows"].values())
    loop = report["chapter_loop"]
    assert 0 < loop["model_busy"] <= 1 and loop["audio_s"] > 0 and loop["seconds_per_char"] > 0
    costs = report["usd_per_audiobook_hour"]
    assert list(costs) == ["Fast GPU", "NVIDIA RTX A4000"]
    assert costs["Fast GPU"]["usd_per_audiobook_hour"] == round(2.5 / loop["audio_s_per_s"], 5)
    assert report["batched_vs_sequential"] > 0 and report["best_rows"] in (1, 2, 4)
