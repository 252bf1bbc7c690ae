"""The consumer side's commands: `consume`, `dlq`, `search`, `archive` (loaded by hookstream.cli)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import asdict
from datetime import UTC, datetime

import click

from consumers import registry
from consumers.errors import CircuitOpenError, ConsumerError
from hookstream.errors import ConfigError
from hookstream.logs import configure_logging
from hookstream.settings import Settings

log = logging.getLogger("hookstream.consumers")


@click.command()
@click.argument("group")
def consume(group: str) -> None:
    """Run one member of GROUP until SIGTERM or Ctrl-C; start more processes to share the partitions.

    Built-in groups: indexer, notifier, archiver. The current batch finishes and is committed
    before the member leaves.
    """
    from consumers.metrics import serve
    from consumers.runtime import Member

    configure_logging()
    settings = Settings.from_env()
    handler = registry.load(group)(settings)
    member = Member(settings, group, handler)
    stopped = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopped.set()
        member.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        serve(settings.metrics_port)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on port {settings.metrics_port}: {exc.strerror}; "
            "set HOOKSTREAM_METRICS_PORT to a free port (0 turns the endpoint off)"
        ) from exc
    try:
        member.run()
    except CircuitOpenError as exc:
        # Stay up (not consuming) so hookstream_consumer_circuit_open=1 can be scraped and a
        # supervisor does not restart the member into draining more records to the DLQ.
        fields = {"group": group, "error": str(exc)}
        log.error("circuit breaker open: member stopped", extra={"fields": fields})
        stopped.wait()
        raise


# -- the DLQ --------------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Inspect the dead-letter topic and replay its records to the group that failed them."""


@dlq.command("list")
@click.option("--group", "group", default=None, help="Only records this group dead-lettered.")
def dlq_list(group: str | None) -> None:
    """One line per DLQ record: position, group, reason, event id, error, when, where from."""
    from consumers.dlq import read_dead_letters

    settings = Settings.from_env()
    count = 0
    for letter in read_dead_letters(settings):
        if group is None or letter.group == group:
            click.echo(letter.summary())
            count += 1
    click.echo(f"{count} record(s) in {settings.dlq_topic}" + (f" from group {group}" if group else ""))


def _position(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise click.BadParameter(f"{text!r} is not PARTITION:OFFSET (for example 2:17, as `dlq list` prints)")
    return int(partition), int(offset)


@dlq.command("show")
@click.argument("position")
@click.option("--payload", is_flag=True, help="Also print the webhook body (it may hold personal data).")
def dlq_show(position: str, payload: bool) -> None:
    """Headers of the DLQ record at POSITION (PARTITION:OFFSET) and the envelope in it, if readable."""
    from consumers.dlq import read_dead_letter
    from hookstream.errors import SchemaError, SchemaRegistryUnavailable
    from schemas.decoder import build_decoder

    settings = Settings.from_env()
    partition, offset = _position(position)
    letter = read_dead_letter(settings, partition, offset)
    click.echo(f"position: {letter.position}")
    click.echo(f"key: {letter.key.decode('utf-8', 'replace') if letter.key is not None else '-'}")
    for name, value in letter.headers:
        click.echo(f"header {name}: {value.decode('utf-8', 'replace')}")
    try:
        envelope = build_decoder(settings).decode(letter.value)  # either framing
    except (SchemaError, SchemaRegistryUnavailable) as exc:
        click.echo(f"value: {len(letter.value or b'')} bytes, not a readable envelope ({exc})")
        return
    for name, value in asdict(envelope).items():
        if name != "payload":
            click.echo(f"envelope {name}: {value}")
    click.echo(f"envelope payload: {len(envelope.payload)} bytes")
    if payload:
        click.echo(envelope.payload.decode("utf-8", "replace"))


@dlq.command("replay")
@click.option("--group", "group", default=None, help="Only records this group failed (default: every group).")
@click.option("--since", default=None, help="Only records that failed since: ISO time or age (30m, 2h, 1d).")
@click.option("--event-id", default=None, help="Only the records of this event.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
def dlq_replay(group: str | None, since: str | None, event_id: str | None, dry_run: bool) -> None:
    """Send DLQ records back to the one group that failed each; a record is replayed only once."""
    from consumers.replay import ReplayFilter, replay
    from hookstream.times import parse_moment

    moment = parse_moment(since, "--since") if since else None
    selection = ReplayFilter(group=group, since=moment, event_id=event_id)
    report = replay(Settings.from_env(), selection, dry_run=dry_run)
    verb = "would replay" if dry_run else "replayed"
    for letter in report.replayed:
        click.echo(f"{verb} {letter.summary()}")
    for letter in report.already:
        click.echo(f"already replayed, skipped {letter.position}")
    click.echo(f"{verb} {len(report.replayed)}, skipped {len(report.already)} replayed before")


# -- the index ------------------------------------------------------------------------------


@click.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--workspace", default=None, help="Only files of this workspace.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of lines.")
def search(text: tuple[str, ...], workspace: str | None, limit: int, as_json: bool) -> None:
    """Search the indexer's file index by name and path (every word must match; prefixes count)."""
    from consumers.index import open_index

    index = open_index(Settings.from_env(), readonly=True)
    try:
        hits = index.search(" ".join(text), workspace=workspace, limit=limit)
    finally:
        index.close()
    if as_json:
        click.echo(json.dumps([asdict(hit) for hit in hits], indent=2))
        return
    for hit in hits:
        when = datetime.fromtimestamp(hit.event_time_ms / 1000, UTC).isoformat(timespec="seconds")
        size = "-" if hit.size is None else str(hit.size)
        click.echo(f"{hit.workspace_id}  {hit.object_id}  {hit.path or hit.name or '-'}  {size}  {when}")
    if not hits:
        click.echo("no matching files")


# -- the archive ----------------------------------------------------------------------------


@click.group()
def archive() -> None:
    """Check the archiver's Avro objects (HOOKSTREAM_ARCHIVE_URL: a bucket or a folder)."""


@archive.command("verify")
@click.option("--topic", default=None, help="Archive of this topic (default: HOOKSTREAM_TOPIC).")
def archive_verify(topic: str | None) -> None:
    """Read every archive object; print records per partition and any gap or duplicate.

    Gaps are normal where records went to the DLQ; exit status 1 on duplicates or broken objects.
    """
    from consumers.archive.storage import open_storage
    from consumers.archive.verify import verify

    settings = Settings.from_env()
    storage = open_storage(settings)
    topic = topic or settings.topic
    report = verify(storage, topic)
    if not report.objects:
        raise ConsumerError(
            f"no archive objects of {topic} in {storage.name}; run `hookstream consume archiver` first"
        )
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise ConsumerError(f"archive {storage.name}{topic}/ has duplicates or broken objects (see above)")
