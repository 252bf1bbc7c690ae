"""The production topology's side of the harness: settings that point a pipeline at the shared
stores, readers of the shared sinks (OpenSearch, S3) that never go through the consumers' own
code, and senders that retry a delivery against the other producer instance.
"""

from __future__ import annotations

import io
import threading
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass

import boto3
import fastavro
import requests
from opensearchpy import OpenSearch, helpers

from tests.faults.harness.load import LoadGenerator, post
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.webhooks import Webhook


@dataclass(frozen=True)
class SharedStores:
    """Where one scenario keeps its shared state: a Redis, an index alias, a bucket, a registry."""

    redis_url: str
    opensearch_url: str
    index: str
    bucket: str
    s3_env: dict[str, str]
    registry_url: str

    @classmethod
    def fresh(
        cls, redis_url: str, opensearch_url: str, s3_env: dict[str, str], registry_url: str
    ) -> SharedStores:
        suffix = uuid.uuid4().hex[:10]
        bucket = f"faults-{suffix}"
        _s3(s3_env).create_bucket(Bucket=bucket)
        return cls(redis_url, opensearch_url, f"faults-files-{suffix}", bucket, s3_env, registry_url)

    def env(self) -> dict[str, str]:
        return {
            "HOOKSTREAM_REDIS_URL": self.redis_url,
            "HOOKSTREAM_OPENSEARCH_URL": self.opensearch_url,
            "HOOKSTREAM_OPENSEARCH_INDEX": self.index,
            "HOOKSTREAM_ARCHIVE_URL": f"s3://{self.bucket}/archive",
            "HOOKSTREAM_SCHEMA_REGISTRY_URL": self.registry_url,
            **self.s3_env,
        }

    def index_docs(self) -> Counter[str]:
        """Live (not removed) index documents per event id: the suite's files are one event each,
        so a document's object `obj-<hex>` names event `evt-<hex>` and must hold it as the last."""
        client = OpenSearch([self.opensearch_url], timeout=30)
        try:
            if not client.indices.exists_alias(name=self.index):
                return Counter()
            client.indices.refresh(index=self.index)
            counts: Counter[str] = Counter()
            for hit in helpers.scan(client, index=self.index, query={"query": {"match_all": {}}}):
                doc = hit["_source"]
                event_id = "evt-" + str(doc["object_id"]).removeprefix("obj-")
                if not doc.get("deleted") and doc.get("last_event_id") == event_id:
                    counts[event_id] += 1
            return counts
        finally:
            client.close()

    def archive_records(self) -> Counter[str]:
        """Archived records per event id, from every object in the bucket."""
        s3 = _s3(self.s3_env)
        counts: Counter[str] = Counter()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                counts.update(str(record["event_id"]) for record in fastavro.reader(io.BytesIO(body)))  # type: ignore[index,call-overload]
        return counts

    def effects(self, receiver: NotificationReceiver) -> dict[str, Counter[str]]:
        return {
            "indexer": self.index_docs(),
            "notifier": receiver.event_ids(honour_keys=True),
            "archiver": self.archive_records(),
        }


def _s3(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


class CrossInstanceLoad(LoadGenerator):
    """Senders behind a gateway that spreads them over two producer instances: each delivery goes
    to one instance, a refused or unanswered one is retried on the OTHER, and one delivery in
    `resend_every` is sent again to the other after its 2xx (the sender timed out before the answer
    reached it). `crossed` holds the event ids delivered to both instances after a 2xx."""

    def __init__(
        self, base_urls: tuple[str, str], *args: object, resend_every: int = 10, **kwargs: object
    ) -> None:
        super().__init__(base_urls[0], *args, **kwargs)  # type: ignore[arg-type]
        self.base_urls = base_urls
        self.resend_every = resend_every
        self.crossed: set[str] = set()
        self._crossed_lock = threading.Lock()

    def _deliver(self, session: requests.Session, hook: Webhook) -> None:
        lane = zlib.crc32(hook.event_id.encode())
        urls = self.base_urls[lane % 2], self.base_urls[1 - lane % 2]
        for attempt_no in range(self.retries + 1):
            attempt = post(session, urls[attempt_no % 2], hook, self.timeout_s)
            with self._lock:
                self.attempts.append(attempt)
            if attempt.accepted:
                if lane % self.resend_every == 0:
                    again = post(session, urls[(attempt_no + 1) % 2], hook, self.timeout_s)
                    with self._lock:
                        self.attempts.append(again)
                    with self._crossed_lock:
                        self.crossed.add(hook.event_id)
                return
            if attempt.status is not None and attempt.status != 503:
                return
            if self._stop.wait(0.5 * 2**attempt_no):
                return
