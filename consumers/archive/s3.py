"""Archive objects in an S3 bucket (AWS or any S3-compatible store).

Endpoint, credentials and region come from boto3's standard configuration: AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_PROFILE and its files, or
the pod's web identity (IRSA). A store at an endpoint that is not AWS (s3proxy, MinIO, Ceph) is
addressed path-style, because its buckets have no DNS names of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from consumers.errors import PermanentError, TransientError

# Fail fast and let the archiver decide: a stopped endpoint must not hold the member for minutes.
_CONFIG = Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})


def _client() -> Any:
    client = boto3.client("s3", config=_CONFIG)
    if not client.meta.endpoint_url.split("//", 1)[-1].split("/")[0].endswith(".amazonaws.com"):
        client = boto3.client("s3", config=_CONFIG.merge(Config(s3={"addressing_style": "path"})))
    return client


def _failure(action: str, key: str, exc: Exception) -> Exception:
    """A ClientError with a 4xx status (no such bucket, access denied) will not heal by retrying."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status == 404 and action == "read":
            return FileNotFoundError(f"no {key}")  # as a local folder says it
        if 400 <= status < 500 and status not in (408, 429):
            return PermanentError(f"S3 refused to {action} {key}: {exc}")
    return TransientError(f"S3 could not {action} {key}: {exc}")


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.name = f"s3://{bucket}/{self.prefix}"

    @cached_property
    def _client(self) -> Any:
        # Built at first use, outside the calls' error mapping (a configuration error is no outage):
        # the archiver's own process only names the storage, its child process uploads, and a
        # client would cost the member about 15 MB.
        return _client()

    def put(self, key: str, data: bytes) -> None:
        client = self._client
        try:
            client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise _failure("write", self.name + key, exc) from exc

    def get(self, key: str) -> bytes:
        client = self._client
        try:
            body: bytes = client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise _failure("read", self.name + key, exc) from exc
        return body

    def keys(self, under: str = "") -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + under
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (BotoCoreError, ClientError) as exc:
            raise _failure("list", self.name + under, exc) from exc
