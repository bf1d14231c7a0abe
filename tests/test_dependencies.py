"""Every third-party module the shipped code imports comes from a distribution pyproject.toml declares."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.processes import ROOT

FIRST_PARTY = {"tasks", "scaler", "synth", "settings", "celeryconfig"}


def shipped_files() -> list[Path]:
    """What the wheel ships (pyproject's packages and modules)."""
    return sorted(p for d in ("tasks", "scaler", "synth") for p in (ROOT / d).rglob("*.py")) + [
        ROOT / "settings.py", ROOT / "celeryconfig.py"]


def third_party_imports(files: list[Path]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it, lazy imports inside functions included."""
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: dict) -> set[str]:
    project = pyproject["project"]
    requirements = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values()
                                                    for r in extra]
    return {_normal(Requirement(r).name) for r in requirements} - {_normal(project["name"])}


def undeclared(imports: dict[str, set[str]], declared: set[str],
               distributions: dict[str, list[str]]) -> dict[str, str]:
    """Imported modules whose distribution is not declared -> why."""
    problems = {}
    for module, files in sorted(imports.items()):
        dists = distributions.get(module)
        if not dists:
            problems[module] = f"installed by no distribution (imported in {', '.join(sorted(files))})"
        elif not any(_normal(d) in declared for d in dists):
            problems[module] = f"from {', '.join(dists)}, not declared (imported in {', '.join(sorted(files))})"
    return problems


def test_every_imported_distribution_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    imports = third_party_imports(shipped_files())
    assert {"celery", "requests", "scipy", "runpod", "boto3"} <= set(imports)  # the scan sees lazy imports
    assert undeclared(imports, declared_distributions(pyproject), importlib.metadata.packages_distributions()) == {}


def test_an_undeclared_import_is_named() -> None:
    imports = {"requests": {"tasks/endpoint.py"}, "scipy": {"synth/output/loudness.py"}, "kombu": {"celeryconfig.py"}}
    problems = undeclared(imports, {"kombu"}, {"requests": ["requests"], "scipy": ["scipy"], "kombu": ["kombu"]})
    assert set(problems) == {"requests", "scipy"} and "synth/output/loudness.py" in problems["scipy"]
