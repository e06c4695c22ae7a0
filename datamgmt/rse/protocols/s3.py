"""Object storage through the S3 API (boto3).

PFNs are path-style whatever the addressing style used on the wire:
``s3://host:port/bucket/key`` (``s3s`` for https), with the bucket as the prefix's first
component. S3 computes only md5 (the ETag of a single-part object), so ``put`` stores the
file's adler32 in the object's user metadata; ``checksum`` streams the object when the value
it asks for is not known.

Settings (passed by the caller, never read from the catalogue): ``access_key``, ``secret_key``,
``session_token``, ``region`` (default ``us-east-1``), ``endpoint_url`` (default ``http(s)://host:port``
from the record), ``addressing_style`` (``path``, ``virtual`` or ``auto``; default from the record's
``extended_attributes['s3_url_style']``, else ``path``), ``verify`` (CA bundle path or bool) and
``multipart_threshold`` (bytes).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from datamgmt.exceptions import InvalidPath, SourceNotFound, StorageError
from datamgmt.rse.checksum import CHUNK_SIZE, adler32_file, checksum_of, require_supported
from datamgmt.rse.lfn2pfn import normalize_prefix
from datamgmt.rse.protocols.base import ProgressCallback, Protocol, StatResult

ADLER32_METADATA_KEY = "adler32"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
#: Rucio's ``s3_url_style`` says ``host`` where boto3 says ``virtual``.
_ADDRESSING_STYLES = {"path": "path", "virtual": "virtual", "host": "virtual", "auto": "auto"}
#: Rucio's signed-URL operations and the S3 calls they allow.
SIGNED_OPERATIONS = {"read": "get_object", "write": "put_object", "delete": "delete_object"}


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            raise SourceNotFound(f"{what}: {code}") from error
        raise StorageError(f"{what}: {error}") from error
    except (BotoCoreError, Boto3Error) as error:
        raise StorageError(f"{what}: {error}") from error


def _accumulating(progress_callback: ProgressCallback | None) -> Callable[[int], None] | None:
    """boto3 reports byte increments from several threads; callers want a running total."""
    if progress_callback is None:
        return None
    lock, total = threading.Lock(), [0]

    def report(increment: int) -> None:
        with lock:
            total[0] += increment
            progress_callback(total[0])

    return report


class S3Protocol(Protocol):
    """Objects in a bucket below a key prefix."""

    schemes = frozenset({"s3", "s3s", "http", "https"})
    verification_checksums = ("md5",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        if self.settings.get("endpoint_url"):
            return str(self.settings["endpoint_url"])
        record = self.record
        scheme = "https" if record.scheme in ("s3s", "https") else "http"
        return f"{scheme}://{record.hostname}" + (f":{record.port}" if record.port else "")

    @property
    def addressing_style(self) -> str:
        style = self.settings.get("addressing_style") or self.record.extended_attributes.get("s3_url_style")
        return _ADDRESSING_STYLES[str(style or "path")]

    @property
    def client(self) -> Any:
        """The boto3 client, created on first use."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            settings = self.settings
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=settings.get("region", "us-east-1"),
                aws_access_key_id=settings.get("access_key"),
                aws_secret_access_key=settings.get("secret_key"),
                aws_session_token=settings.get("session_token"),
                verify=settings.get("verify"),
                # SigV4 for pre-signed URLs too (botocore would sign those with the older SigV2).
                config=Config(signature_version="s3v4", s3={"addressing_style": self.addressing_style}),
            )
        return self._client

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        threshold = self.settings.get("multipart_threshold")
        return TransferConfig(multipart_threshold=int(threshold)) if threshold else TransferConfig()

    def bucket_and_key(self, pfn: str) -> tuple[str, str]:
        """Where ``pfn`` lives, checked to lie below the prefix."""
        bucket, _, key = self._split_pfn(pfn).path.lstrip("/").partition("/")
        if not bucket or not key:
            raise InvalidPath(f"PFN {pfn!r} does not name an object in a bucket")
        return bucket, key

    def stat(self, pfn: str) -> StatResult:
        bucket, key = self.bucket_and_key(pfn)
        with _s3_errors(f"stat {pfn}"):
            head = self.client.head_object(Bucket=bucket, Key=key)
        checksums = {}
        etag = str(head.get("ETag", "")).strip('"')
        if etag and "-" not in etag:  # a multipart ETag is not the object's md5
            checksums["md5"] = etag.lower()
        adler32 = head.get("Metadata", {}).get(ADLER32_METADATA_KEY)
        if adler32:
            checksums["adler32"] = adler32.lower()
        return StatResult(size=int(head["ContentLength"]), checksums=checksums)

    def put(self, local_path: str, pfn: str, progress_callback: ProgressCallback | None = None) -> None:
        bucket, key = self.bucket_and_key(pfn)
        if not os.path.isfile(local_path):
            raise SourceNotFound(f"put {local_path}: no such local file")
        metadata = {ADLER32_METADATA_KEY: adler32_file(local_path)}
        with _s3_errors(f"put {local_path} -> {pfn}"):
            self.client.upload_file(
                local_path,
                bucket,
                key,
                ExtraArgs={"Metadata": metadata},
                Callback=_accumulating(progress_callback),
                Config=self._transfer_config(),
            )

    def get(self, pfn: str, local_path: str, progress_callback: ProgressCallback | None = None) -> None:
        bucket, key = self.bucket_and_key(pfn)
        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        with _s3_errors(f"get {pfn} -> {local_path}"):
            self.client.download_file(
                bucket,
                key,
                local_path,
                Callback=_accumulating(progress_callback),
                Config=self._transfer_config(),
            )

    def delete(self, pfn: str) -> None:
        bucket, key = self.bucket_and_key(pfn)
        self.stat(pfn)  # S3 deletes of missing keys succeed silently; callers want to know
        with _s3_errors(f"delete {pfn}"):
            self.client.delete_object(Bucket=bucket, Key=key)

    def rename(self, pfn: str, new_pfn: str) -> None:
        """S3 has no rename: a server-side copy (metadata included), then a delete."""
        bucket, key = self.bucket_and_key(pfn)
        new_bucket, new_key = self.bucket_and_key(new_pfn)
        with _s3_errors(f"rename {pfn} -> {new_pfn}"):
            self.client.copy(
                {"Bucket": bucket, "Key": key}, new_bucket, new_key, Config=self._transfer_config()
            )
            self.client.delete_object(Bucket=bucket, Key=key)

    def checksum(self, pfn: str, algorithm: str) -> str:
        known = self.stat(pfn).checksums.get(require_supported(algorithm))
        if known:
            return known
        bucket, key = self.bucket_and_key(pfn)
        with _s3_errors(f"checksum {pfn}"):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            return checksum_of(body.iter_chunks(chunk_size=CHUNK_SIZE), algorithm)

    def signed_url(self, pfn: str, operation: str, lifetime: int) -> str:
        """A pre-signed https/http URL that lets its holder ``operation`` (Rucio's ``read``,
        ``write`` or ``delete``) the object of ``pfn`` for ``lifetime`` seconds, with no keys."""
        bucket, key = self.bucket_and_key(pfn)
        with _s3_errors(f"sign {pfn}"):
            return str(
                self.client.generate_presigned_url(
                    SIGNED_OPERATIONS[operation], Params={"Bucket": bucket, "Key": key}, ExpiresIn=lifetime
                )
            )

    def list_files(self) -> Iterator[tuple[str, int]]:
        """Objects whose keys lie below the prefix, page by page (``list_objects_v2``)."""
        bucket, _, key_prefix = normalize_prefix(self.record.prefix).lstrip("/").partition("/")
        if not bucket:
            raise InvalidPath(f"S3 prefix {self.record.prefix!r} names no bucket")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        with _s3_errors(f"list {self.base_url}/{bucket}/{key_prefix}"):
            for page in pages:
                for item in page.get("Contents", ()):
                    yield f"{self.base_url}/{bucket}/{item['Key']}", int(item["Size"])
