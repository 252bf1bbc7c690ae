"""`hookstream schemas register|check`: the envelope schemas in the registry, and the deploy gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hookstream.errors import ConfigError
from hookstream.settings import Settings

_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
_schemas_option = click.option(
    "--schemas",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of envelope.v*.avsc (default: the installed package's).",
)


@click.group()
def schemas() -> None:
    """The envelope schemas in the schema registry (subject <topic>-value)."""


def _settings() -> Settings:
    settings = Settings.from_env()
    if not settings.schema_registry_url:
        raise ConfigError(
            "HOOKSTREAM_SCHEMA_REGISTRY_URL is not set: point it at the registry's Confluent API "
            "(Apicurio: http://HOST:PORT/apis/ccompat/v7)"
        )
    return settings


@schemas.command()
@_schemas_option
@_json_option
def register(folder: Path | None, as_json: bool) -> None:
    """Register every local envelope version in order; set the subject's compatibility to
    BACKWARD unless the subject has its own."""
    from schemas.subject import register as run

    result = run(_settings(), folder)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    for entry in result.registered:
        click.echo(f"envelope v{entry.version}: schema id {entry.schema_id} under {result.subject}")
    how = "set now" if result.compatibility_set else "kept"
    click.echo(f"{result.subject} compatibility: {result.compatibility} ({how})")


@schemas.command()
@_schemas_option
@_json_option
def check(folder: Path | None, as_json: bool) -> None:
    """Test the newest local envelope schema against the subject under its compatibility rule;
    exit 1, naming the fields, when the registry would refuse it."""
    from schemas.subject import check as run

    result = run(_settings(), folder)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.compatible:
        checked = f"subject versions {result.against}" if result.against else "nothing registered yet"
        click.echo(
            f"envelope v{result.version} is compatible with {result.subject} "
            f"under {result.compatibility} ({checked})"
        )
        for note in result.notes:
            click.echo(f"  note: {note}", err=True)
    else:
        click.echo(
            f"envelope v{result.version} is INCOMPATIBLE with {result.subject} under {result.compatibility}:",
            err=True,
        )
        for problem in result.problems:
            click.echo(f"  {problem}", err=True)
    if not result.compatible:
        sys.exit(1)
