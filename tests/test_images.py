"""The images without a Docker engine: the base's torch against what transformers needs, the image's own
model-load command on the tiny model, the build context, and one worker command for Procfile, image and pods."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from scaler.providers.base import worker_argv
from settings import Settings
from tests.support.processes import ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"
_BASE = re.compile(r"^ARG BASE=pytorch/pytorch:(?P<torch>\d+\.\d+\.\d+)-cuda(?P<cuda>\d+\.\d+)-", re.M)


def transformers_torch() -> SpecifierSet:
    """The torch versions the installed transformers accepts, as transformers itself declares them."""
    from transformers.dependency_versions_table import deps

    return Requirement(deps["torch"]).specifier


def base_image(dockerfile: str) -> tuple[Version, Version]:
    """(torch, CUDA) of the Dockerfile's default `BASE`, a pytorch/pytorch:<torch>-cuda<cuda>-... tag."""
    match = _BASE.search(dockerfile)
    assert match, "docker/Dockerfile must start from ARG BASE=pytorch/pytorch:<torch>-cuda<cuda>-..."
    return Version(match["torch"]), Version(match["cuda"])


def torch_problem(dockerfile: str, needed: SpecifierSet) -> str | None:
    torch, _ = base_image(dockerfile)
    return None if needed.contains(torch) else f"base image torch {torch} does not satisfy transformers' torch{needed}"


def test_transformers_declares_a_torch_minimum() -> None:
    assert not transformers_torch().contains("2.5.1") and transformers_torch().contains("2.6.0")


@pytest.mark.parametrize(("base", "ok"), [
    ("ARG BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", False),
    ("ARG BASE=pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", False),
    ("ARG BASE=pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime", True),
    ("ARG BASE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime", True),
])
def test_the_check_catches_an_old_base(base: str, ok: bool) -> None:
    assert (torch_problem(base, transformers_torch()) is None) is ok


def test_the_dockerfile_base_has_a_torch_transformers_accepts() -> None:
    assert torch_problem(DOCKERFILE.read_text(), transformers_torch()) is None


def test_the_gpu_extra_admits_no_torch_transformers_turns_off() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [torch] = [Requirement(r) for r in extras["gpu"] if Requirement(r).name == "torch"]
    bounds = [Version(s.version) for s in torch.specifier if s.operator in (">=", "==", "~=", ">")]
    assert bounds, "the gpu extra must bound torch from below"
    assert all(transformers_torch().contains(v) for v in bounds), torch


def test_pods_land_only_on_hosts_with_the_base_cuda_or_newer() -> None:
    _, cuda = base_image(DOCKERFILE.read_text())
    allowed = Settings.model_fields["runpod_allowed_cuda_versions"].default.split(",")
    assert allowed and all(Version(v) >= cuda for v in allowed), (cuda, allowed)


def _preload_command(dockerfile: str) -> list[str]:
    [line] = [line for line in dockerfile.splitlines() if line.startswith("RUN ") and "synth.engines.preload" in line]
    argv = shlex.split(line.removeprefix("RUN "))
    assert argv[:3] == ["python", "-m", "synth.engines.preload"], argv
    return [sys.executable, *argv[1:]]


def test_the_image_model_load_command_loads_and_reads_the_tiny_model(tiny_model_dir: Path, worker_env) -> None:
    command = _preload_command(DOCKERFILE.read_text())
    run = subprocess.run(command, cwd=ROOT, env=worker_env | {"AUDIOBOOK_DEVICE": "cuda"}, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded["model"] == str(tiny_model_dir) and loaded["fallback_from"] is None
    assert loaded["samples"] > 0 and loaded["sample_rate"] > 0


def test_the_image_model_load_command_fails_the_build_on_a_bad_model(tmp_path: Path, worker_env) -> None:
    command = _preload_command(DOCKERFILE.read_text())
    run = subprocess.run(command, cwd=ROOT, env=worker_env | {"AUDIOBOOK_MODEL": str(tmp_path / "no-model")},
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("preload: cannot load model config") and "Traceback" not in run.stderr


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    ignore = [line.strip() for line in (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "the context starts empty and names what it lets in"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [part for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")
              for part in line.split()[1:-1]]
    assert copied
    for path in copied:
        assert (ROOT / path).exists(), path
        assert path.rstrip("/") in allowed, f"{path} is copied but left out of the build context"


def test_one_worker_command_for_procfile_image_and_pods() -> None:
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert shlex.split(procfile["gpu"]) == worker_argv("local")
    [cmd] = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD [\"celery\"")]
    assert json.loads(cmd.removeprefix("CMD ")) == worker_argv("pod")
