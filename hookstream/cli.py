"""`hookstream`: the one command-line face of the project.

Subcommands live beside the code they drive and are imported only when invoked, so
`hookstream kafka start` never loads Flask and `hookstream producer` never loads the
consumers. Any `HookstreamError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import pkgutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hookstream.errors import HookstreamError

if TYPE_CHECKING:
    from hookstream.acls import Grant
    from hookstream_dev.kafka import LocalCluster

# name -> "module:attribute" of a click command; imported on first use.
SUBCOMMANDS = {
    "kafka": "hookstream.cli:kafka",
    "topics": "hookstream.cli:topics",
    "producer": "producer.cli:producer",
    "send": "producer.cli:send",
    "consume": "consumers.cli:consume",
    "dlq": "consumers.cli:dlq",
    "search": "consumers.cli:search",
    "archive": "consumers.cli:archive",
    "lag": "hookstream.offsets_cli:lag",
    "offsets": "hookstream.offsets_cli:offsets",
    "schemas": "schemas.cli:schemas",
    "acls": "hookstream.cli:acls",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in SUBCOMMANDS:
            return command
        found = pkgutil.resolve_name(SUBCOMMANDS[cmd_name])
        return found if isinstance(found, click.Command) else None


@click.group(cls=LazyGroup)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Signed webhooks into Kafka, consumed at least once by idempotent consumer groups."""
    # A librdkafka property librdkafka refuses fails here, in one line, not in a gunicorn
    # worker's first request or a consumer's first poll. `kafka` runs the development broker
    # and builds no client from the settings.
    if ctx.invoked_subcommand != "kafka":
        from hookstream.kafka import check_passthrough
        from hookstream.settings import Settings

        check_passthrough(Settings.from_env())


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except HookstreamError as exc:
        click.echo(f"hookstream: {exc}", err=True)
        sys.exit(1)


# -- the local broker -----------------------------------------------------------------------

_home_option = click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="HOOKSTREAM_KAFKA_HOME",
    default=None,
    help="Where the cluster keeps its data and logs (default ~/.local/share/hookstream/kafka).",
)


def _cluster(home: Path | None, **shape: int | bool | None) -> LocalCluster:
    from hookstream_dev.kafka import DEFAULT_HOME, LocalCluster

    return LocalCluster(home or DEFAULT_HOME, **shape)  # type: ignore[arg-type]


def _role_grants() -> dict[str, tuple[Grant, ...]]:
    """Every role of this deployment and its least-privilege ACLs (docs/security.md)."""
    from consumers.registry import group_names
    from hookstream.acls import role_grants
    from hookstream.settings import Settings

    return role_grants(Settings.from_env(), group_names())


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {name}={value}" for name, value in env.items())


@click.group()
def kafka() -> None:
    """Run Apache Kafka locally from its Maven Central jars (no Docker needed)."""


@kafka.command("start")
@_home_option
@click.option("--nodes", type=click.Choice(["1", "3"]), default=None, help="1 node, or a 3-node quorum.")
@click.option("--port", type=int, default=None, help="Client port of node 1 (default 9092).")
@click.option("--heap-mb", type=int, default=512, show_default=True, help="JVM heap per node.")
@click.option(
    "--secure",
    is_flag=True,
    default=None,
    help="TLS + SASL/SCRAM (and mTLS), ACLs only, one user per role (fixed at the first start).",
)
def kafka_start(
    home: Path | None, nodes: str | None, port: int | None, heap_mb: int, secure: bool | None
) -> None:
    """Start the local cluster (resolving and formatting it the first time) and wait for it."""
    shape = {"nodes": int(nodes) if nodes else None, "base_port": port, "secure": secure}
    cluster = _cluster(home, heap_mb=heap_mb, **shape)
    cluster.start()
    for node in cluster.status():
        click.echo(node.describe())
    click.echo(f"bootstrap servers: {cluster.bootstrap_servers}")
    if cluster.secure:
        click.echo(f"secured: SASL/SCRAM-SHA-512 over TLS; mTLS on {cluster.mtls_bootstrap_servers}")
        grants = _role_grants()
        cluster.provision(grants)
        for role in grants:
            click.echo(f"\n# {role} (`hookstream kafka env {role} --mtls` for its client certificate)")
            click.echo(_exports(cluster.client_env(role)))


@kafka.command("env")
@_home_option
@click.argument("role")
@click.option("--mtls", is_flag=True, help="Its client certificate instead of its SCRAM password.")
def kafka_env(home: Path | None, role: str, mtls: bool) -> None:
    """Print the settings a client of the secured cluster needs to act as ROLE (eval-able)."""
    cluster = _cluster(home)
    roles = list(_role_grants())
    if role not in roles:
        raise click.BadParameter(f"{role!r} is not a role; roles: {', '.join(roles)}", param_hint="ROLE")
    click.echo(_exports(cluster.client_env(role, mtls=mtls)))


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Resolve the broker jars from Maven Central into the cache (start does this too)."""
    from hookstream_dev.kafka import fetch

    click.echo(fetch())


@kafka.command("stop")
@_home_option
def kafka_stop(home: Path | None) -> None:
    """Stop what `start` launched; the data stays for the next start."""
    _cluster(home).stop()
    click.echo("stopped")


@kafka.command("status")
@_home_option
def kafka_status(home: Path | None) -> None:
    """Show each node and whether it runs; exit 1 when any node is down."""
    nodes = _cluster(home).status()
    for node in nodes:
        click.echo(node.describe())
    if not all(node.running for node in nodes):
        sys.exit(1)


@kafka.command("reset")
@_home_option
@click.confirmation_option(prompt="Delete every topic and offset the local cluster holds?")
def kafka_reset(home: Path | None) -> None:
    """Stop the cluster and delete all it held."""
    _cluster(home).reset()
    click.echo("reset: the next start formats a new cluster")


@kafka.command("kill")
@_home_option
@click.argument("node", type=int)
def kafka_kill(home: Path | None, node: int) -> None:
    """SIGKILL one node, as a crash would."""
    _cluster(home).kill(node)
    click.echo(f"node {node} killed")


@kafka.command("start-node")
@_home_option
@click.argument("node", type=int)
def kafka_start_node(home: Path | None, node: int) -> None:
    """Start one node of the cluster again and wait until it answers."""
    _cluster(home).start_node(node)
    click.echo(f"node {node} running")


# -- topics ---------------------------------------------------------------------------------


@click.group()
def topics() -> None:
    """Manage the events and DLQ topics."""


@topics.command("create")
@click.option("--partitions", type=click.IntRange(1), default=8, show_default=True)
def topics_create(partitions: int) -> None:
    """Create the events and DLQ topics if missing (idempotent); print what exists."""
    from hookstream.admin import admin_client, default_topics, ensure_topics
    from hookstream.settings import Settings

    settings = Settings.from_env()
    for result in ensure_topics(admin_client(settings), default_topics(settings, partitions)):
        click.echo(result.describe())


# -- least-privilege ACLs ---------------------------------------------------------------------


@click.group()
def acls() -> None:
    """Each role's Kafka user and least-privilege ACLs (docs/security.md)."""


@acls.command("show")
def acls_show() -> None:
    """Print what an operator grants each role, for the current topics and group prefix."""
    for user, grants in _role_grants().items():
        click.echo(f"User:{user}")
        for grant in grants:
            click.echo(f"  ALLOW {grant.describe()}")


@acls.command("apply")
@click.option(
    "--passwords",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Also set each role's SCRAM-SHA-512 password from the file named like the role in this folder.",
)
def acls_apply(passwords: Path | None) -> None:
    """Create every role's ACLs (and SCRAM users) as the user the Kafka settings name, which
    must be allowed to (a super user, or ALTER on the cluster)."""
    from hookstream.acls import apply_grants, set_scram_passwords
    from hookstream.admin import admin_client
    from hookstream.settings import Settings

    grants = _role_grants()
    admin = admin_client(Settings.from_env())
    if passwords is not None:
        missing = [user for user in grants if not (passwords / user).is_file()]
        if missing:
            raise click.UsageError(f"--passwords {passwords}: no file for {', '.join(missing)}")
        set_scram_passwords(admin, {user: (passwords / user).read_text().strip() for user in grants})
        click.echo(f"SCRAM users set: {', '.join(grants)}")
    apply_grants(admin, grants)
    click.echo(f"ACLs applied for: {', '.join(grants)}")
