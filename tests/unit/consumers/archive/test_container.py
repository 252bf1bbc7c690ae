"""An archive object's bytes depend on its records only, whichever process writes them."""

from __future__ import annotations

import os
import subprocess
import sys

# Builds one object of two blocks from fixed records and prints the digest of its bytes.
_ENCODE = """
import hashlib
from datetime import UTC, datetime
from consumers.archive.container import BLOCK_RECORDS, OpenObject
from consumers.handler import Record
from schemas.codec import Envelope

first = Envelope(
    event_id="evt-0", provider="fastio", event_type="file.created", workspace_id="ws-1",
    payload=b"{}", received_at=datetime(2026, 1, 1, tzinfo=UTC),
)
key = "events/dt=2026-01-01/hour=00/events+0+00000000000000000000.avro"
obj = OpenObject(key, Record(first, "events", 0, 0, 0))
for offset in range(BLOCK_RECORDS + 5):
    obj.add(offset, b"record %d" % offset)  # the bytes of one record: the container does not read them
print(hashlib.sha256(obj.encode()).hexdigest())
"""


def test_the_same_records_give_the_same_bytes_in_any_process() -> None:
    """A member that redoes an object (after a crash, on another host) writes the same bytes. The
    string hash seed differs from process to process; fastavro's parsed schema orders some keys by
    it, so the header must hold the schema as read."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", _ENCODE],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(digests) == 1
