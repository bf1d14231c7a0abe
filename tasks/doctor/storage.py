"""Storage: one probe object written, read back and deleted where the workers write chapters."""

from __future__ import annotations

import uuid

from tasks.doctor import CheckResult, Context, failed, passed

_PROBE = b"audiobook doctor probe"


def storage_fix(error: str) -> str:
    """The likely fix for a storage error, from S3's (or the file system's) words."""
    if "NoSuchBucket" in error:
        return "create the bucket named in AUDIOBOOK_STORAGE_URL (docs/deploy.md, step 3)"
    if any(mark in error for mark in ("AccessDenied", "403", "Forbidden")):
        return ("grant the workers' key s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on the "
                "bucket (the policy in docs/deploy.md, step 3)")
    if any(mark in error for mark in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "credentials")):
        return "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the workers' key (and AWS_ENDPOINT_URL off AWS)"
    if "Permission denied" in error or "Read-only" in error:
        return "make the AUDIOBOOK_STORAGE_URL directory writable by the workers"
    return "check AUDIOBOOK_STORAGE_URL and the AWS_* variables (docs/deploy.md, step 3)"


def check_storage(context: Context) -> CheckResult:
    from synth.storage import open_storage

    uri = context.settings.storage_uri
    key = f"doctor/{uuid.uuid4().hex}.txt"
    try:
        storage = open_storage(uri)
        storage.put_bytes(key, _PROBE, "text/plain")
        read = storage.get_bytes(key)
        storage.delete([key])
        left = storage.get_bytes(key)
    except Exception as exc:  # noqa: BLE001 - StorageError, or an error opening the storage
        return failed("storage", f"{uri}: {exc}", storage_fix(str(exc)))
    if read != _PROBE or left is not None:
        return failed("storage", f"{uri}: the probe object came back {'changed' if read != _PROBE else 'undeleted'}",
                      "check the bucket's versioning and lifecycle rules (docs/deploy.md, step 3)")
    if context.on_runpod and uri.startswith("file://"):
        return failed("storage", f"{uri} is a directory on this machine: pods write chapters to their own disks",
                      "set AUDIOBOOK_STORAGE_URL=s3://bucket/prefix with the AWS_* variables (docs/deploy.md, step 3)")
    return passed("storage", f"{uri}: an object written, read back and deleted")
