"""An S3-compatible server on this host: s3proxy from Maven Central, filesystem backend, no Docker.

`S3Proxy(home).start()` serves S3 on loopback at `endpoint` with fixed development credentials
(`ACCESS_KEY` / `SECRET_KEY`), keeping its buckets as folders under `home/blobs`. A stop and a
start on the same home keep every object, so a test can take the endpoint away mid-stream and
bring it back.
"""

from __future__ import annotations

from pathlib import Path

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

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def running(self) -> bool:
        return self.daemon.running()
