"""Storage in S3 or any S3-compatible store, through boto3 (credentials from the standard AWS_* variables)."""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from synth.errors import StorageError
from synth.storage.base import Storage, check_key


class S3Storage(Storage):
    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:  # noqa: ANN001
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # boto3 reads AWS_ENDPOINT_URL itself, so any S3-compatible server works without code here.
        self.client = client or boto3.client("s3")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _call(self, what: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 {what} failed: {exc}") from exc

    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> str:
        self._call("upload", self.client.upload_file, str(source), self.bucket, self._key(key),
                   ExtraArgs={"ContentType": content_type})
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self._call("put", self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data,
                   ContentType=content_type)
        return self.uri(key)

    def get_file(self, key: str, target: Path) -> bool:
        try:
            self.client.download_file(self.bucket, self._key(key), str(target))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise StorageError(f"S3 download failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 download failed: {exc}") from exc
        return True

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise StorageError(f"S3 get failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 get failed: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"S3 head failed: {exc}") from exc
        return True

    def share_url(self, key: str, expires_s: int) -> str | None:
        """A presigned GET URL (signed locally by boto3: no request is made)."""
        return self._call("presign", self.client.generate_presigned_url, "get_object",
                          Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s)

    def list(self, prefix: str) -> list[str]:
        if ".." in prefix.split("/"):
            raise StorageError(f"invalid storage prefix {prefix!r}")
        root = self.prefix + "/" if self.prefix else ""
        full, strip = root + prefix, len(root)
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 list failed: {exc}") from exc
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            self._call("delete", self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch})
