"""Evidence in S3-compatible object storage (Ceph RGW, Aliyun OSS, Tencent COS, MinIO,
s3proxy): `<prefix>objects/<sha256>` and `<prefix>previews/<sha256>.jpg` in one bucket.

Write once: an object is written only after a HEAD found no object under its key, and the
service has no code path that deletes or overwrites one. With LIANDONG_EVIDENCE_S3_LOCK_DAYS
> 0 every object is written with an S3 Object Lock retention in COMPLIANCE mode (the bucket
must have been created with object lock, which `ensure_bucket` does): then not even the
bucket's owner can delete or overwrite it before the date. Servers without object lock
refuse such writes, so the setting stays off for them (docs/casefile.md says which).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from casefile.adapters.evidence_store import CHUNK, ObjectMissing, is_key

# multipart above 64 MiB, 16 MiB parts: few requests for phone videos
TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=16 * 2**20)


def s3_client(endpoint: str | None = None) -> Any:
    """A client for LIANDONG_EVIDENCE_S3_ENDPOINT (or `endpoint`) with path-style addressing
    (what RGW, MinIO and s3proxy expect by default); keys from the AWS_* variables."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint or os.environ.get("LIANDONG_EVIDENCE_S3_ENDPOINT") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _missing(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3EvidenceStore:
    name = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        spool: Path,
        *,
        lock_days: int = 0,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.spool = spool
        self.lock_days = lock_days
        spool.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, spool: Path) -> S3EvidenceStore:
        parsed = urlparse(url)
        store = cls(
            s3_client(),
            parsed.netloc,
            parsed.path,
            spool,
            lock_days=int(os.environ.get("LIANDONG_EVIDENCE_S3_LOCK_DAYS", "0")),
        )
        store.ensure_bucket()
        return store

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as err:
            if not _missing(err):
                raise
        extra = {"ObjectLockEnabledForBucket": True} if self.lock_days else {}
        try:
            self.client.create_bucket(Bucket=self.bucket, **extra)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def key(self, sha256: str, *, preview: bool = False) -> str:
        if not is_key(sha256):
            raise ValueError(f"not a SHA-256 key: {sha256!r}")
        return (
            f"{self.prefix}previews/{sha256}.jpg" if preview else f"{self.prefix}objects/{sha256}"
        )

    def incoming_dir(self) -> Path:
        return self.spool

    def _lock(self) -> dict[str, Any]:
        if not self.lock_days:
            return {}
        return {
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=self.lock_days),
        }

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)  # type: ignore[no-any-return]
        except ClientError as err:
            if _missing(err):
                return None
            raise

    def put_file(self, sha256: str, path: Path) -> bool:
        key = self.key(sha256)
        try:
            if self._head(key) is not None:
                return False
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": sha256}, **self._lock()},
                Config=TRANSFER,
            )
            return True
        finally:
            path.unlink(missing_ok=True)

    def put_preview(self, sha256: str, data: bytes) -> None:
        key = self.key(sha256, preview=True)
        if self._head(key) is None:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="image/jpeg", **self._lock()
            )

    def exists(self, sha256: str) -> bool:
        return self._head(self.key(sha256)) is not None

    def size(self, sha256: str, *, preview: bool = False) -> int:
        head = self._head(self.key(sha256, preview=preview))
        if head is None:
            raise ObjectMissing(sha256)
        return int(head["ContentLength"])

    def read(
        self, sha256: str, offset: int = 0, length: int | None = None, *, preview: bool = False
    ) -> Iterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(sha256, preview=preview)}
        if offset or length is not None:
            if length == 0:
                return
            end = "" if length is None else str(offset + length - 1)
            args["Range"] = f"bytes={offset}-{end}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as err:
            if _missing(err):
                raise ObjectMissing(sha256) from None
            raise
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}objects/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = str(item["Key"]).rsplit("/", 1)[-1]
                if is_key(name):
                    yield name
