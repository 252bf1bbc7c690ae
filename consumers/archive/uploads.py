"""The archiver's uploads (an object's Avro container, deflated, then stored), made in a child
process of the member.

Deflating a megabyte and a PUT through boto3 (the request built, signed and checksummed in
Python) cost more of the member process's GIL than anything else beside its own thread (see
`consumers.archive.child`). The member's upload thread sends an object's key and its blocks (the
records' bytes, joined per block) and waits. The child opens the settings' storage itself. A
failed upload comes back as the storage raised it (TransientError, PermanentError); a dead or
silent child raises TransientError, so the archiver tries that object again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from consumers.archive.child import ChildProcess
from consumers.archive.container import Block, container
from consumers.archive.storage import open_storage
from consumers.errors import PermanentError, TransientError
from hookstream.settings import Settings

# Above the longest a sound upload takes: the child's start, then the S3 client's worst case
# (two attempts, each a 3 s connect and a 20 s read) for an object of up to 64 MiB.
UPLOAD_DEADLINE_S = 120.0

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
        passes = (TransientError, PermanentError)
        self.child = ChildProcess("archive-uploads", _uploads, settings, passes, UPLOAD_DEADLINE_S)

    def put(self, key: str, blocks: list[Block]) -> None:
        self.child.call((key, blocks))

    def close(self) -> None:
        self.child.close()
