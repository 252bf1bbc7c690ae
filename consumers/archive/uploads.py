"""The archiver's uploads (an object's Avro container, deflated, then stored), made in a child
process of the member.

Deflating a megabyte and a PUT through boto3 (the request built, signed and checksummed in
Python) held the member process's GIL for about 3% of its time in the bench (see
`consumers.archive.child`). The member's upload thread sends an object's key and its blocks (the
records' bytes, joined per block) and waits. The child opens the settings' storage itself. A
failed upload comes back as the storage raised it (TransientError, a timeout or a refused
connection, PermanentError); a dead or silent child raises TransientError, so the archiver tries
that object again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from consumers.archive.child import ChildProcess
from consumers.archive.container import Block, container
from consumers.archive.storage import open_storage
from consumers.errors import TRANSIENT_TYPES, PermanentError
from hookstream.settings import Settings

# An upload's deadline: above the S3 client's worst case for a small object (two attempts, each a
# 3 s connect and a 20 s read), plus the object's time on a link as slow as 1 Mbit/s.
UPLOAD_DEADLINE_S = 60.0
SLOWEST_LINK_BYTES_PER_S = 128 * 1024

UploadRequest = tuple[str, list[Block]]  # the object's key, its blocks


@contextmanager
def _uploads(settings: Settings) -> Iterator[Callable[[UploadRequest], None]]:
    """In the child: the settings' storage, storing each object it is sent."""
    storage = open_storage(settings)
    yield lambda request: storage.put(request[0], container(*request))


class UploadProcess:
    """Objects stored in the settings' storage from a child process; one at a time."""

    def __init__(self, settings: Settings) -> None:
        self.name = open_storage(settings).name  # where they go, for the archiver's logs
        # What the storage raises keeps its meaning: a timeout or a refused connection (a local
        # folder on NFS, say) is transient, as it was in process; the first is the outage's.
        passes = (*TRANSIENT_TYPES, PermanentError)
        self.child = ChildProcess("archive-uploads", _uploads, settings, passes, UPLOAD_DEADLINE_S)

    def put(self, key: str, blocks: list[Block]) -> None:
        size = sum(len(data) for _, data in blocks)  # before deflate: an upper bound
        self.child.call((key, blocks), UPLOAD_DEADLINE_S + size / SLOWEST_LINK_BYTES_PER_S)

    def close(self) -> None:
        self.child.close()
