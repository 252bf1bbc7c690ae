"""`make run-shared`: the production topology on one host, in the foreground.

Every shared system the product uses runs for real, from the same runners the test fixtures use:
Kafka, Redis, OpenSearch, s3proxy (S3) and the schema registry. In front of them: two producer
instances behind nginx (`deploy/nginx/hookstream.conf`), and two members of each group, each with a
data directory of its own, as pods on two hosts would have. honcho runs the processes with prefixed
logs; Ctrl-C stops them, then the servers. Everything lives under `--home`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import boto3

from hookstream.errors import HookstreamError
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.nginx import Gateway
from hookstream_dev.opensearch import LocalOpenSearch
from hookstream_dev.redis import LocalRedis
from hookstream_dev.registry import LocalRegistry
from hookstream_dev.s3proxy import S3Proxy

DEFAULT_HOME = Path.home() / ".local" / "share" / "hookstream" / "shared"
GROUPS = ("indexer", "notifier", "archiver")
MEMBERS_PER_GROUP = 2
GATEWAY_PORT = 8000
PRODUCER_PORTS = (8001, 8002)
FIRST_METRICS_PORT = 9111
BUCKET = "hookstream-archive"
S3_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
BIN = Path(sys.executable).parent


def _secret(home: Path) -> Path:
    """A development signing secret, made once, as `make run` does."""
    path = home / "dev-fastio-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n")
    return path


def _procfile(home: Path) -> Path:
    lines = [
        f"producer-{n}: {BIN}/hookstream producer --bind 127.0.0.1:{port} --workers 2"
        for n, port in enumerate(PRODUCER_PORTS, start=1)
    ]
    port = FIRST_METRICS_PORT
    for group in GROUPS:
        for n in range(1, MEMBERS_PER_GROUP + 1):
            data = home / "members" / f"{group}-{n}"
            data.mkdir(parents=True, exist_ok=True)
            lines.append(
                f"{group}-{n}: HOOKSTREAM_DATA_DIR={data} HOOKSTREAM_METRICS_PORT={port} "
                f"{BIN}/hookstream consume {group}"
            )
            port += 1
    path = home / "Procfile"
    path.write_text("\n".join(lines) + "\n")
    return path


def _banner(env: dict[str, str]) -> str:
    hookstream = f"{BIN}/hookstream"
    members = ", ".join(
        f"{group}-{n} :{FIRST_METRICS_PORT + i * MEMBERS_PER_GROUP + n - 1}"
        for i, group in enumerate(GROUPS)
        for n in range(1, MEMBERS_PER_GROUP + 1)
    )
    producers = " and ".join(f"http://127.0.0.1:{port}" for port in PRODUCER_PORTS)
    archive = " ".join(f"{name}={env[name]}" for name in ("HOOKSTREAM_ARCHIVE_URL", *S3_VARIABLES))
    rows = [
        ("POST webhooks to", f"http://127.0.0.1:{GATEWAY_PORT}/webhooks/fastio (nginx, to both producers)"),
        ("try it", f"FASTIO_WEBHOOK_SECRET_FILE={env['FASTIO_WEBHOOK_SECRET_FILE']} {hookstream} send"),
        ("producer metrics", f"{producers} (/metrics)"),
        ("member metrics", f"{members} (/metrics)"),
        (
            "search the index",
            f"HOOKSTREAM_OPENSEARCH_URL={env['HOOKSTREAM_OPENSEARCH_URL']} {hookstream} search TEXT",
        ),
        ("list the archive", f"{archive} {hookstream} archive verify"),
        ("", "(an object appears when its file rolls: HOOKSTREAM_ARCHIVE_MAX_AGE_S, 60 s by default)"),
        ("Redis, registry", f"{env['HOOKSTREAM_REDIS_URL']}, {env['HOOKSTREAM_SCHEMA_REGISTRY_URL']}"),
    ]
    lines = "\n".join(f"    {label:<18} {value}" for label, value in rows)
    title = "Hookstream, shared topology: every state in a shared system."
    return f"\n  {title}\n{lines}\n  Ctrl-C stops everything.\n"


class _Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@contextlib.contextmanager
def backends(home: Path) -> Iterator[dict[str, str]]:
    """Start every shared server (stopping them all on the way out); yield the settings that
    point Hookstream's processes at them."""
    kafka = LocalCluster(home / "kafka")
    redis = LocalRedis(home / "redis", appendonly=True)
    opensearch = LocalOpenSearch(home / "opensearch")
    s3 = S3Proxy(home / "s3proxy", port=9010)
    registry = LocalRegistry(home / "registry", port=8081)
    gateway = Gateway(home / "nginx", GATEWAY_PORT, [f"127.0.0.1:{port}" for port in PRODUCER_PORTS])
    servers: list[_Server] = [kafka, redis, opensearch, s3, registry, gateway]
    try:
        for server in servers:
            print(f"starting {type(server).__name__} ...", flush=True)
            server.start()
        yield {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "HOOKSTREAM_REDIS_URL": redis.url,
            "HOOKSTREAM_OPENSEARCH_URL": opensearch.url,
            "HOOKSTREAM_ARCHIVE_URL": f"s3://{BUCKET}/events",
            "HOOKSTREAM_SCHEMA_REGISTRY_URL": registry.url,
            **s3.environment(),
        }
    finally:
        for server in reversed(servers):
            with contextlib.suppress(HookstreamError):
                server.stop()


def _prepare(env: dict[str, str]) -> None:
    """Topics, the envelope schemas and the archive bucket: what an operator makes once."""
    for args in (("topics", "create"), ("schemas", "register")):
        subprocess.run([str(BIN / "hookstream"), *args], env=env, check=True)
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make run-shared", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="servers' data and members' dirs")
    args = parser.parse_args(argv)
    home: Path = args.home
    home.mkdir(parents=True, exist_ok=True)
    try:
        with backends(home) as shared:
            env = {**os.environ, **shared, "FASTIO_WEBHOOK_SECRET_FILE": str(_secret(home))}
            _prepare(env)
            procfile = _procfile(home)
            print(_banner(env), flush=True)
            honcho = subprocess.Popen([str(BIN / "honcho"), "start", "-f", str(procfile)], env=env)
            while honcho.poll() is None:
                # Ctrl-C reaches honcho too, which stops its processes: wait for it, then the servers.
                with contextlib.suppress(KeyboardInterrupt):
                    honcho.wait()
    except (HookstreamError, subprocess.CalledProcessError) as exc:
        print(f"make run-shared: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
