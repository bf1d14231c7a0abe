"""The business commands' edges without workers: unreachable scaler state, bad options, S3 links, file modes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import ROOT, free_port
from tests.tasks.test_cli import audiobook, one_line_error

BOOK = "# One\n\nThe harbour was quiet at dawn.\n\n# Two\n\nA single gull watched the boats come home.\n"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    path.write_text(BOOK)
    return path


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "SCALER_", "CELERY_"))}
    return env | {"AUDIOBOOK_STORAGE_URL": str(tmp_path / "store"), "SCALER_LOCAL_DIR": str(tmp_path / "w")} | extra


def test_inspect_says_when_the_scaler_is_unreachable_and_still_estimates(book: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    run = audiobook("inspect", str(book), "--json", "--usd-per-hour", "2.5", env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert "unreachable" in report["pool"]["source"] and report["pool"]["workers"] is None
    chars = [c["characters"] for c in report["chapters"]]
    assert chars == [len("The harbour was quiet at dawn."), len("A single gull watched the boats come home.")]
    assert report["estimate"]["usd"] == pytest.approx(sum(chars) * 0.004 / 3600 * 2.5)
    assert report["estimate"]["wall_s_now"] is None and report["price_source"] == "--usd-per-hour"
    text = audiobook("inspect", str(book), env=env).stdout
    assert "pool: size unknown: the scaler's state is unreachable" in text and "2 chapters" in text


def test_inspect_loads_no_model(book: Path, tmp_path: Path) -> None:
    code = ("import sys\nfrom tasks.cli import main\n"
            f"main(['inspect', {str(book)!r}, '--json'])\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    env = clean_env(tmp_path, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("args,expected", [
    (["usage", "--since", "yesterday"], "--since must be an ISO 8601 date"),
    (["fetch", "../etc"], "BOOK_ID '../etc'"),
    (["fetch", "nothing", "--expires", "0"], "--expires must be between"),
    (["inspect", "missing.md"], "no such file"),
    (["inspect", "book.md", "--usd-per-hour", "-1"], "--usd-per-hour must be"),
    (["submit", "book.md", "--metadata", "customer"], "--metadata must be KEY=VALUE"),
    (["submit", "book.md", "--cover", "book.md"], "is not a JPEG or PNG image"),
])
def test_mistakes_get_one_line(book: Path, tmp_path: Path, args: list[str], expected: str) -> None:
    args = [str(book) if a == "book.md" else str(tmp_path / a) if a == "missing.md" else a for a in args]
    one_line_error(audiobook(*args, env=clean_env(tmp_path)), expected)


def test_voices_of_a_model_that_cannot_load(tmp_path: Path) -> None:
    one_line_error(audiobook("voices", env=clean_env(tmp_path, AUDIOBOOK_MODEL=str(tmp_path / "nowhere"))),
                   "cannot load")


def test_fetch_from_s3_prints_a_link_that_downloads_the_book(s3_endpoint: str, tmp_path: Path) -> None:
    import boto3

    from synth.storage.s3 import S3Storage

    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    client.create_bucket(Bucket="shelf")
    storage = S3Storage("shelf", "books", client=client)
    storage.put_bytes("tome/book.m4b", b"not really audio")
    storage.put_json("tome/manifest.json", {"book_id": "tome", "book_key": "tome/book.m4b", "book_format": "m4b"})
    env = clean_env(tmp_path, AUDIOBOOK_STORAGE_URL="s3://shelf/books", **aws)

    url = audiobook("fetch", "tome", "--expires", "60", env=env).stdout.strip()
    assert url.startswith(s3_endpoint) and "Signature" in url and "Expires=" in url
    with urllib.request.urlopen(url, timeout=10) as answer:  # loopback moto server
        assert answer.read() == b"not really audio"
    out = tmp_path / "tome.m4b"
    assert audiobook("fetch", "tome", "--out", str(out), env=env).stdout.strip() == str(out)
    assert out.read_bytes() == b"not really audio"

    storage.put_json("bare/manifest.json", {"book_id": "bare"})
    one_line_error(audiobook("fetch", "bare", env=env), "without a book file")


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640)])
def test_stored_files_get_the_usual_permissions(tmp_path: Path, umask: int, expected: int) -> None:
    """Not mkstemp's 0600: readable by the web server or the colleague who fetches the book."""
    code = (f"import os\nos.umask({umask})\nfrom pathlib import Path\nfrom synth.storage.local import LocalStorage\n"
            f"store = LocalStorage(Path({str(tmp_path / 'store')!r}))\nstore.put_bytes('b/book.m4b', b'x')\n"
            f"store.put_file('b/c1/a.flac', Path({str(tmp_path / 'src')!r}))\n")
    (tmp_path / "src").write_bytes(b"y")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    for key in ("b/book.m4b", "b/c1/a.flac"):
        assert stat.S_IMODE((tmp_path / "store" / key).stat().st_mode) == expected
