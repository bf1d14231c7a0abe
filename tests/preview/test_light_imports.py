"""The control worker forwards previews with runpod alone: none of the preview modules imports torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT


@pytest.mark.parametrize("module", ["tasks.preview", "tasks.endpoint", "tasks.limits", "tasks.cli.preview",
                                    "synth.preview", "synth.serverless", "synth.clip"])
def test_preview_modules_import_without_torch(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
