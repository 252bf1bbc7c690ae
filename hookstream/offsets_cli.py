"""`hookstream lag` and `hookstream offsets reset`: the operator's view of consumer groups."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime

import click

from hookstream.admin import admin_client
from hookstream.lag import GroupLag, measure
from hookstream.offsets import OffsetMove, ResetTarget, apply_reset, plan_reset
from hookstream.settings import Settings
from hookstream.times import MomentError, parse_moment

# Distinct from 1 (could not ask Kafka) so cron and CI can tell "behind" from "broken".
EXIT_LAG_ABOVE_MAX = 3


@click.command()
@click.option("--group", "groups", multiple=True, help="Only this group (repeatable). Default: every group.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option(
    "--max-lag",
    type=click.IntRange(0),
    default=None,
    help=f"Exit {EXIT_LAG_ABOVE_MAX} when any group is more than this many messages behind in total.",
)
def lag(groups: tuple[str, ...], as_json: bool, max_lag: int | None) -> None:
    """Per group and partition: committed offset, end offset, lag in messages and in seconds.

    Lag counts from the committed offset: what a restart would redo. For a group that holds
    records until they are durable (the archiver, until its object is uploaded) that includes
    records processed but not durable yet; each member's hookstream_consumer_not_durable_messages
    says how many.
    """
    found = measure(Settings.from_env(), list(groups) or None)
    if as_json:
        click.echo(json.dumps([g.as_dict() for g in found], indent=2))
    else:
        click.echo(_lag_table(found))
    behind = [g for g in found if max_lag is not None and g.total_messages > max_lag]
    for g in behind:
        click.echo(f"group {g.group} is {g.total_messages} messages behind (--max-lag {max_lag})", err=True)
    if behind:
        sys.exit(EXIT_LAG_ABOVE_MAX)


def _lag_table(groups: list[GroupLag]) -> str:
    if not groups:
        return "no consumer group has committed offsets yet"
    rows = [("GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG_SECONDS")]
    for g in groups:
        for p in g.partitions:
            seconds = "?" if p.lag_seconds is None else f"{p.lag_seconds:.1f}"
            committed = "-" if p.committed is None else str(p.committed)
            rows.append(
                (p.group, p.topic, str(p.partition), committed, str(p.end), str(p.lag_messages), seconds)
            )
    return _columns(rows)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@click.group()
def offsets() -> None:
    """Move a consumer group's committed offsets (backfills and replays from Kafka's retention)."""


def _moment(text: str) -> datetime:
    try:
        return parse_moment(text, "--to-datetime")
    except MomentError as exc:
        raise click.BadParameter(str(exc)) from exc


@offsets.command("reset")
@click.option("--group", required=True, help="The consumer group to move (e.g. indexer).")
@click.option("--topic", default=None, help="Topic to move the group on. Default: HOOKSTREAM_TOPIC.")
@click.option(
    "--to-datetime", "to_datetime", default=None, help="First record at or after this ISO time or age (2h)."
)
@click.option("--to-earliest", is_flag=True, help="The first record Kafka still retains.")
@click.option("--to-latest", is_flag=True, help="The end: skip everything not yet processed.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
def offsets_reset(
    group: str,
    topic: str | None,
    to_datetime: str | None,
    to_earliest: bool,
    to_latest: bool,
    dry_run: bool,
) -> None:
    """Move GROUP's offsets on every partition; refused while the group has active members."""
    targets = [
        target
        for target in (
            ResetTarget("datetime", _moment(to_datetime)) if to_datetime else None,
            ResetTarget("earliest") if to_earliest else None,
            ResetTarget("latest") if to_latest else None,
        )
        if target is not None
    ]
    if len(targets) != 1:
        raise click.UsageError("give exactly one of --to-datetime T, --to-earliest, --to-latest")
    target = targets[0]
    settings = Settings.from_env()
    admin = admin_client(settings)
    moves = plan_reset(admin, group, topic or settings.topic, target)
    click.echo(_moves_table(moves))
    if dry_run:
        click.echo(f"dry run: group {group} would move to {target.describe()}; nothing changed")
        return
    apply_reset(admin, group, moves)
    click.echo(f"group {group} moved to {target.describe()} on {len(moves)} partition(s)")


def _moves_table(moves: list[OffsetMove]) -> str:
    rows = [("TOPIC", "PARTITION", "CURRENT", "NEW", "CHANGE")]
    for m in moves:
        change = "" if m.current is None else f"{m.new - m.current:+d}"
        current = "-" if m.current is None else str(m.current)
        rows.append((m.topic, str(m.partition), current, str(m.new), change))
    return _columns(rows)
