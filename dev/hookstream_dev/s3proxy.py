"""An S3-compatible server on this host: s3proxy from Maven Central, filesystem backend, no Docker.

`S3Proxy(home).start()` serves S3 on loopback at `endpoint` with fixed development credentials
(`ACCESS_KEY` / `SECRET_KEY`), keeping its buckets as folders under `home/blobs`. A stop and a
start on the same home keep every object, so a test can take the endpoint away mid-stream and
bring it back. By hand: `python -m hookstream_dev.s3proxy start [--bucket NAME]` prints the
variables to export.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hookstream_dev import byhand
from hookstream_dev.process import (
    CACHE,
    Daemon,
    free_port_block,
    java_binary,
    maven_artifact,
    port_open,
    wait_until,
)

S3PROXY_VERSION = "4.1.0"
COORDINATES = f"org.gaul:s3proxy:{S3PROXY_VERSION}:jar:jar-with-dependencies"
ACCESS_KEY = "hookstream-dev"
SECRET_KEY = "hookstream-dev-secret"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0
DEFAULT_HOME = Path.home() / ".local" / "share" / "hookstream" / "s3proxy"
DEFAULT_PORT = 9000


def jar() -> Path:
    """The s3proxy jar, from ~/.m2 or Maven Central, cached under ~/.cache/hookstream."""
    return maven_artifact(COORDINATES, CACHE / f"s3proxy-{S3PROXY_VERSION}")


def fetch() -> str:
    return f"s3proxy {S3PROXY_VERSION}: {jar()}"


class S3Proxy:
    """One s3proxy process on loopback, its state in `home`, tracked by `home/s3proxy.pid`."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port_block(1)
        self.daemon = Daemon("s3proxy", home / "s3proxy.pid", marker=f"s3proxy-{home.name}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What boto3 (and so the archiver) needs to reach this server: its standard variables."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def _write_properties(self) -> Path:
        blobs = self.home / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        properties = self.home / "s3proxy.properties"
        properties.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint=http://127.0.0.1:{self.port}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={ACCESS_KEY}",
                    f"s3proxy.credential={SECRET_KEY}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={blobs}",
                    "",
                ]
            )
        )
        return properties

    def start(self) -> None:
        java = java_binary(17, needed_by="s3proxy")
        properties = self._write_properties()
        # The marker names this home, so a pid file is only trusted for this very server; a small
        # heap, because the machine is shared with Kafka and the other servers.
        cmd = [
            java, "-Xmx256m", f"-Dhookstream.marker=s3proxy-{self.home.name}",
            "-jar", str(jar()), "--properties", str(properties),
        ]  # fmt: skip
        self.daemon.start(cmd, self.home / "s3proxy.log", cwd=self.home)
        what = f"s3proxy on {self.endpoint}"
        wait_until(lambda: port_open(self.port), START_TIMEOUT_S, what, self.daemon.running)

    def make_bucket(self, name: str) -> None:
        """A bucket of the filesystem backend is a folder: made without a request."""
        (self.home / "blobs" / name).mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def running(self) -> bool:
        return self.daemon.running()


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)
        parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="buckets, log and pid file")
        parser.add_argument("--bucket", default="hookstream-archive", help="made at start if missing")

    def build(args: argparse.Namespace) -> S3Proxy:
        server = S3Proxy(args.home, args.port)
        if args.action == "start":
            server.make_bucket(args.bucket)  # a folder of the filesystem backend, made before it starts
        return server

    def started(server: Any, args: argparse.Namespace) -> list[str]:
        exports = " ".join(f"{name}={value}" for name, value in server.environment().items())
        return [
            f"s3proxy: {server.endpoint} (log {args.home / 's3proxy.log'})",
            f"export {exports} HOOKSTREAM_ARCHIVE_URL=s3://{args.bucket}/events",
        ]

    byhand.run("s3proxy", __doc__ or "", argv, arguments, build, started, fetch)


if __name__ == "__main__":
    main()
