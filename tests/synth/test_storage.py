"""Both storage backends against real stores: a local directory and a loopback S3 server (moto server mode)."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from synth.errors import StorageError
from synth.storage import open_storage
from synth.storage.base import Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"audio-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return open_storage(f"s3://{bucket}/books")


def test_round_trip_list_and_delete(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"\x00\x01audio")
    uri = storage.put_file("b1/c1/abc.wav", source, "audio/wav")
    assert uri.endswith("b1/c1/abc.wav") and uri.split(":")[0] in ("file", "s3")
    storage.put_json("b1/c1/abc.json", {"duration_s": 1.5})
    storage.put_bytes("b1/c2/x.wav", b"other")

    assert storage.exists("b1/c1/abc.wav") and not storage.exists("b1/c1/nope.wav")
    assert storage.list("b1/c1/") == ["b1/c1/abc.json", "b1/c1/abc.wav"]
    assert storage.list("b1/") == ["b1/c1/abc.json", "b1/c1/abc.wav", "b1/c2/x.wav"]
    assert storage.get_json("b1/c1/abc.json") == {"duration_s": 1.5}
    assert storage.get_bytes("missing/key") is None
    target = tmp_path / "out.bin"
    assert storage.get_file("b1/c1/abc.wav", target) and target.read_bytes() == b"\x00\x01audio"
    assert not storage.get_file("b1/c1/none.wav", tmp_path / "none")

    storage.put_bytes("b1/c1/abc.wav", b"replaced")  # deterministic keys: a redelivery overwrites
    assert storage.get_bytes("b1/c1/abc.wav") == b"replaced"
    storage.delete_prefix("b1/c1/")
    assert storage.list("b1/") == ["b1/c2/x.wav"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b"])
def test_rejects_unsafe_keys(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put_bytes(key, b"x")


def test_s3_prefix_is_applied(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="prefixed")
    storage = open_storage("s3://prefixed/some/prefix/")
    assert storage.put_bytes("k/v.txt", b"1") == "s3://prefixed/some/prefix/k/v.txt"
    assert [o["Key"] for o in client.list_objects_v2(Bucket="prefixed")["Contents"]] == ["some/prefix/k/v.txt"]


def test_s3_errors_keep_the_backend_message(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    storage = open_storage("s3://no-such-bucket-here/x")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.put_bytes("a.txt", b"1")


@pytest.mark.parametrize("url", ["ftp://host/x", "s3:///nobucket"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StorageError):
        open_storage(url)


def test_local_delete_prefix_takes_writes_killed_midway(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    storage.put_bytes("b/c/.checkpoint/h/state.json", b"{}")
    (tmp_path / "b/c/.checkpoint/h/.tmp-abc123").write_bytes(b"half a part")  # a SIGKILLed write
    storage.delete_prefix("b/c/.checkpoint/")
    assert not (tmp_path / "b/c/.checkpoint").exists() and not (tmp_path / "b").exists()
